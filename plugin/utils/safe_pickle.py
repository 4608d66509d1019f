"""Reading pickles that cannot run code: only the objects of a ``tools/test.py --out`` pkl.

mmdet's ``DumpDetResults`` pickles (with plain :mod:`pickle`, through mmengine's ``dump``) a list
of dicts holding strings, numbers, tuples, numpy arrays and scalars, CPU torch tensors and, for
masks, RLE dicts with ``bytes`` counts. Unpickling such a file with ``pickle.load`` runs whatever
callable the file names, so ``os.system`` as well. :func:`load` admits only the globals those
objects need and refuses any other with :class:`ForbiddenGlobalError` naming it:

- ``_codecs.encode`` (``bytes`` in protocol 2), restricted to latin-1; ``bytes``, ``bytearray``,
  ``set``, ``frozenset``, ``complex``; ``collections.OrderedDict``;
- numpy arrays, dtypes and scalars (``numpy.core`` and ``numpy._core`` spellings, so a pkl
  written with numpy 1 loads with numpy 2 and back);
- torch tensors: ``torch._utils._rebuild_tensor(_v2|_v3)`` of a storage without backward hooks,
  dtypes, ``torch.Size``, ``torch.device``; a storage comes as ``torch.storage._load_from_bytes``,
  which torch implements with ``torch.load(weights_only=False)``: here it is read with
  ``weights_only=True`` and must be a storage.
"""
import functools
import io
import pickle
import re
from collections import OrderedDict

import numpy as np
import torch


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing of it was called."""

    def __init__(self, name: str, where: str = ''):
        super().__init__(
            f'forbidden global {name}{where} (a results pkl holds only dicts, lists, numbers, '
            'strings, numpy arrays and torch tensors; nothing of it was run)')
        self.name = name


def _latin1_encode(text, encoding='latin1'):
    """``_codecs.encode`` as pickle protocol 2 writes bytes, and nothing else."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError(f'_codecs.encode({type(text).__name__}, {encoding!r}) is '
                                     'not how a pickle writes bytes')
    return text.encode('latin1')


def _storage_from_bytes(data):
    """``torch.storage._load_from_bytes`` with torch's own safe loader."""
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError(f'a tensor storage must be bytes, got {type(data).__name__}')
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # torch's message advises weights_only=False: never pass that on
        found = re.search(r'GLOBAL (\S+)', str(e))
        if found:
            raise ForbiddenGlobalError(found.group(1), ' inside a tensor storage') from None
        raise pickle.UnpicklingError(
            'a tensor storage that torch.load(weights_only=True) cannot read') from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(
            f'a tensor storage must be a torch storage, got {type(storage).__name__}')
    return storage


def _tensor_rebuilder(rebuild):
    def rebuild_tensor(storage, *args):
        if not isinstance(storage, torch.storage.TypedStorage):
            raise pickle.UnpicklingError(
                f'{rebuild.__name__}: a tensor needs a storage, got {type(storage).__name__}')
        hooks = args[4] if len(args) > 4 else None  # offset, size, stride, requires_grad, hooks
        if hooks:
            raise pickle.UnpicklingError(f'{rebuild.__name__}: tensor with backward hooks')
        return rebuild(storage, *args)

    return rebuild_tensor


@functools.lru_cache(maxsize=1)
def _allowed_globals() -> dict:
    allowed = {'_codecs.encode': _latin1_encode, 'collections.OrderedDict': OrderedDict,
               'torch.storage._load_from_bytes': _storage_from_bytes,
               'torch.Size': torch.Size, 'torch.device': torch.device}
    for obj in (bytes, bytearray, set, frozenset, complex):
        allowed[f'builtins.{obj.__name__}'] = obj
    for name in ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3'):
        allowed[f'torch._utils.{name}'] = _tensor_rebuilder(getattr(torch._utils, name))
    for name in dir(torch):
        if isinstance(getattr(torch, name), torch.dtype):
            allowed[f'torch.{name}'] = getattr(torch, name)
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray, numeric  # numpy 1.x
    for core in ('numpy.core', 'numpy._core'):
        allowed[f'{core}.multiarray._reconstruct'] = multiarray._reconstruct
        allowed[f'{core}.multiarray.scalar'] = multiarray.scalar
        allowed[f'{core}.numeric._frombuffer'] = numeric._frombuffer  # protocol 5
    allowed['numpy.ndarray'] = np.ndarray
    allowed['numpy.dtype'] = np.dtype
    for t in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
              'float16', 'float32', 'float64'):
        cls = type(np.dtype(t))
        allowed[f'numpy.dtypes.{cls.__name__}'] = cls
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose globals come from the allow-list only."""

    def find_class(self, module: str, name: str):
        module = 'builtins' if module == '__builtin__' else module  # Python 2's name, protocol 2
        allowed = _allowed_globals()
        if f'{module}.{name}' not in allowed:
            raise ForbiddenGlobalError(f'{module}.{name}')
        return allowed[f'{module}.{name}']


def load(file):
    """:func:`pickle.load` of an open binary file, admitting only the allow-listed globals."""
    return RestrictedUnpickler(file).load()


def loads(data: bytes):
    """:func:`pickle.loads` admitting only the allow-listed globals."""
    return load(io.BytesIO(data))
