"""Three fixes for mmengine 0.10.7 on today's torch, applied by ``import plugin``.

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
3. Damaged or refused checkpoints: mmengine's local-file loader (behind ``load_from``,
   ``--resume``, ``init_cfg=dict(type='Pretrained')`` and ``load_checkpoint``) lets torch's
   errors through: a bare ``EOFError`` for an empty file, and for a text file or a pickle with a
   forbidden global the advice to load again with the safety off. It raises one
   :class:`CheckpointError` instead: "not a checkpoint: PATH (empty | truncated | not a torch
   file)", or "refused checkpoint: PATH ..." naming the forbidden global.
"""
import functools
import os.path as osp
import pickle
import re
import zipfile

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


class CheckpointError(RuntimeError):
    """A file that is no checkpoint, or one that a ``weights_only`` load refuses."""


def _damage(path: str, err: Exception):
    """Why the file at ``path`` is no torch checkpoint (``'empty'``, ``'truncated'``,
    ``'not a torch file'``), or ``None`` when it looks like one."""
    if osp.getsize(path) == 0:
        return 'empty'
    with open(path, 'rb') as f:
        magic = f.read(4)
    if magic.startswith(b'PK'):  # a zip archive: torch's format since 1.6
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if archive.testzip() is not None:
                    return 'truncated'
        except (zipfile.BadZipFile, EOFError, OSError):
            return 'truncated'
        return None if any(n.endswith('data.pkl') for n in names) else 'not a torch file'
    if magic[:1] != b'\x80':  # torch's legacy format starts with a pickle protocol opcode
        return 'not a torch file'
    if isinstance(err, EOFError) or 'truncated' in str(err):
        return 'truncated'
    return 'not a torch file' if 'magic number' in str(err) else None


def _refusal(path: str, err: pickle.UnpicklingError) -> str:
    """torch's weights_only refusal, without its advice to switch the safety off."""
    message = str(err)
    found = re.search(r'GLOBAL (\S+) (was not an allowed global|whose module)', message)
    if found:
        hint = '' if found.group(2) == 'whose module' else (
            '; if you trust the file and need that object, allow it with '
            'torch.serialization.add_safe_globals')
        return (f'refused checkpoint: {path} holds the global {found.group(1)}, which is not a '
                'tensor, a container or an object mmengine saves (unpickling it could run '
                f'code){hint}')
    detail = message.split('WeightsUnpickler error:')[-1]
    detail = detail.replace(torch.serialization.UNSAFE_MESSAGE, '')
    detail = detail.split('Check the documentation of torch.load')[0]
    detail = ' '.join(line.strip() for line in detail.splitlines()
                      if line.strip() and 'weights_only' not in line)
    return f'refused checkpoint: {path}: {detail or "the pickle uses what a safe load refuses"}'


PRETRAIN_CONFIG_DIRS = ('imagenet', 'shapecls')  # configs/ folders whose runs write backbones


def _pretrain_config(path: str):
    """``configs/imagenet/X.py`` when ``path`` is what that config's run writes: a file named
    after it, or a checkpoint in its work dir (``work_dirs/X/epoch_100.pth``); else ``None``."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    names = (osp.splitext(osp.basename(path))[0], osp.basename(osp.dirname(osp.abspath(path))))
    for folder in PRETRAIN_CONFIG_DIRS:
        for name in names:
            config = osp.join('configs', folder, name + '.py')
            if osp.isfile(osp.join(root, config)):
                return config
    return None


def _load_local_checkpoint(load_from_local):
    """mmengine's ``load_from_local`` raising :class:`CheckpointError` on a bad file, and naming
    the pretraining config that writes a missing backbone checkpoint."""

    @functools.wraps(load_from_local)
    def wrapper(filename, map_location):
        try:
            return load_from_local(filename, map_location)
        except FileNotFoundError:
            config = _pretrain_config(osp.expanduser(filename))
            if config is None:
                raise
            raise CheckpointError(
                f'checkpoint not found: {filename}: it is the backbone pretrained by {config}; '
                f'run `tools/train.py {config}` (or `tools/dist_train.sh {config} 8`) first, or '
                'point init_cfg.checkpoint at your copy (docs/pretraining.md)') from None
        except OSError:  # unreadable: mmengine's and the system's message say it
            raise
        except Exception as err:  # what torch.load raises for a bad file varies with the file
            path = osp.expanduser(filename)
            reason = _damage(path, err)
            if reason is not None:
                raise CheckpointError(f'not a checkpoint: {filename} ({reason})') from None
            if isinstance(err, pickle.UnpicklingError):
                raise CheckpointError(_refusal(filename, err)) from None
            raise

    wrapper._mmdynconv = True
    return wrapper


def patch_checkpoint_errors() -> None:
    """Route mmengine's local checkpoint files through :func:`_load_local_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader
    loader = CheckpointLoader._schemes['']
    if not getattr(loader, '_mmdynconv', False):
        CheckpointLoader.register_scheme('', _load_local_checkpoint(loader), force=True)


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
    patch_checkpoint_errors()
