from .compat import (CheckpointError, allow_mmengine_checkpoint_globals, patch_checkpoint_errors,
                     patch_cpu_distributed)
from .sync_buffers_hook import IterSyncBuffersHook

__all__ = ['CheckpointError', 'IterSyncBuffersHook', 'allow_mmengine_checkpoint_globals',
           'patch_checkpoint_errors', 'patch_cpu_distributed']
