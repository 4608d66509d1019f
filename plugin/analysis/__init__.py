"""Parameters and FLOPs of modules and of configs' models (used by tools/, not by the layers)."""
from .complexity import (build_model, config_complexity, empty_data_samples, find_backbone,
                         module_complexity, register_flop_handle)
from .flop_handles import FLOP_HANDLES

__all__ = [
    'FLOP_HANDLES', 'build_model', 'config_complexity', 'empty_data_samples', 'find_backbone',
    'module_complexity', 'register_flop_handle'
]
