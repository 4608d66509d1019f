from .hooks.occlusion_eval_hook import OcclusionEvalHook
from .metrics.occlusion_coco_metric import OcclusionCocoMetric
from .occlusion import (DEFAULT_BINS, OcclusionEvalError, box_occlusion_ratio, bucket_ranges,
                        evaluate_by_occlusion, format_report, image_occlusion_ratios,
                        load_results, mask_occlusion_ratio)

__all__ = [
    'OcclusionEvalHook', 'OcclusionCocoMetric', 'DEFAULT_BINS', 'OcclusionEvalError',
    'box_occlusion_ratio', 'bucket_ranges', 'evaluate_by_occlusion', 'format_report',
    'image_occlusion_ratios', 'load_results', 'mask_occlusion_ratio'
]
