from .complexity import (build_model, config_complexity, find_backbone, module_complexity,
                         register_flop_handle)

__all__ = [
    'build_model', 'config_complexity', 'find_backbone', 'module_complexity',
    'register_flop_handle'
]
