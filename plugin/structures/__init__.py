"""Plain geometry shared by the data generators and the evaluation; it imports no other part of
the plugin, so both may import it."""
from .occlusion_ratio import (DEFAULT_BINS, DEFAULT_BUCKETS, Buckets, OcclusionEvalError,
                              box_occlusion_ratio, bucket_name, mask_occlusion_ratio, parse_bins)

__all__ = [
    'DEFAULT_BINS', 'DEFAULT_BUCKETS', 'Buckets', 'OcclusionEvalError', 'box_occlusion_ratio',
    'bucket_name', 'mask_occlusion_ratio', 'parse_bins'
]
