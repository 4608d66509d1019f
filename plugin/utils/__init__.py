from .compat import allow_mmengine_checkpoint_globals, patch_cpu_distributed

__all__ = ['allow_mmengine_checkpoint_globals', 'patch_cpu_distributed']
