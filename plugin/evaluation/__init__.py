from ..structures.occlusion_ratio import (DEFAULT_BINS, OcclusionEvalError, box_occlusion_ratio,
                                          mask_occlusion_ratio, parse_bins)
from .cocoeval_subsets import load_results
from .hooks.occlusion_eval_hook import OcclusionEvalHook
from .metrics.occlusion_coco_metric import OcclusionCocoMetric
from .metrics.occlusion_metric import OcclusionMetric
from .occlusion import evaluate_by_occlusion, format_report, image_occlusion_ratios

__all__ = [
    'OcclusionEvalHook', 'OcclusionCocoMetric', 'OcclusionMetric', 'DEFAULT_BINS',
    'OcclusionEvalError', 'box_occlusion_ratio', 'evaluate_by_occlusion', 'format_report',
    'image_occlusion_ratios', 'load_results', 'mask_occlusion_ratio', 'parse_bins'
]
