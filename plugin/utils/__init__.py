from .mmengine_patches import (CheckpointError, allow_mmengine_checkpoint_globals,
                               patch_checkpoint_errors, patch_cpu_distributed)

__all__ = ['CheckpointError', 'allow_mmengine_checkpoint_globals', 'patch_checkpoint_errors',
           'patch_cpu_distributed']
