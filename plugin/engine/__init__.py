from .hooks import IterSyncBuffersHook

__all__ = ['IterSyncBuffersHook']
