from .sync_buffers_hook import IterSyncBuffersHook

__all__ = ['IterSyncBuffersHook']
