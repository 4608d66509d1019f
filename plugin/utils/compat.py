"""Two fixes for mmengine 0.10.7 on today's torch, applied by ``import plugin``.

1. Checkpoints under ``torch.load(weights_only=True)`` (the default since torch 2.6): mmengine's
   checkpoints pickle its ``HistoryBuffer`` (numpy arrays inside, and its statistics methods as
   ``getattr(HistoryBuffer, 'mean')`` & co.) in ``meta.message_hub``, so ``--resume`` fails with
   "Unsupported global". We allow-list exactly those objects with
   ``torch.serialization.add_safe_globals``; ``weights_only`` stays on. ``builtins.getattr`` is
   not allowed as such: a stand-in that resolves only ``HistoryBuffer``'s own public methods takes
   its name. numpy pickles arrays under ``numpy.core`` (1.x) or ``numpy._core`` (2.x): both
   spellings are allowed, so a checkpoint written with either numpy loads with the other.
2. ``--launcher pytorch`` without CUDA: mmengine calls ``torch.cuda.set_device`` and wraps the
   model in DDP with ``device_ids=[local_rank]``, both of which fail on CPU. Without CUDA we
   initialise the process group with gloo (``nccl`` cannot run there) and give DDP no device ids.
   With CUDA nothing changes.
"""
import functools
import pickle

import numpy as np
import torch
import torch.distributed as torch_dist


def _numpy_globals():
    """numpy objects that mmengine checkpoints hold: arrays, their dtypes and numpy scalars."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray  # numpy 1.x
    dtype_classes = [type(np.dtype(t)) for t in
                     ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                      'uint64', 'float16', 'float32', 'float64')]
    objs = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]
    out = list(objs)
    for obj in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            if obj.__module__ != module:
                out.append((obj, f'{module}.{obj.__name__}'))
    return out


def _history_buffer_method(owner, name: str):
    """``getattr`` as mmengine's checkpoints use it, and nothing more."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and not name.startswith('_') and callable(
            vars(HistoryBuffer).get(name)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load: getattr({owner!r}, {name!r}) is not allowed (mmdynconv allows '
        'getattr only for the statistics methods of mmengine\'s HistoryBuffer)')


def allow_mmengine_checkpoint_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read the objects mmengine puts in checkpoints."""
    from mmengine.logging.history_buffer import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), *_numpy_globals()])


def _cpu_only(module=None) -> bool:
    if torch.cuda.is_available():
        return False
    return module is None or all(p.device.type == 'cpu' for p in module.parameters())


def patch_cpu_distributed() -> None:
    """Make mmengine's ``pytorch`` launcher and DDP wrapper work without CUDA (gloo on CPU)."""
    import mmengine.dist.utils as dist_utils
    from mmengine.logging import print_log
    from mmengine.model.wrappers.distributed import MMDistributedDataParallel

    if getattr(dist_utils._init_dist_pytorch, '_mmdynconv', False):
        return
    init_dist_pytorch = dist_utils._init_dist_pytorch

    @functools.wraps(init_dist_pytorch)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if not _cpu_only() or init_backend != 'torch':
            return init_dist_pytorch(backend, init_backend=init_backend, **kwargs)
        backend = 'gloo' if backend == 'nccl' else backend
        print_log(f'mmdynconv: no CUDA device, distributed {backend} process group on CPU',
                  logger='current')
        torch_dist.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch._mmdynconv = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, *args, **kwargs):
        if _cpu_only(module):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__


def apply() -> None:
    allow_mmengine_checkpoint_globals()
    patch_cpu_distributed()
