"""ONNX export with the checks a deployment needs: a model in eval mode, a supported opset, every
module exportable, a file written whole or not at all, and a comparison in onnxruntime.

Exporter: torch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``; deprecated but
still in torch 2.14), the one mmdeploy drives. It traces the model in Python, so our layers switch
to their export forms of standard ops under ``torch.onnx.is_in_onnx_export()`` (DRConv's region
routing, DSC's sampling), dims become dynamic by ``dynamic_axes``, and ops with a ``symbolic``
(mmcv's, torchvision's) export through it; ``onnx.checker`` then catches a symbolic that does not
fit the opset (mmcv 2.1's ``RoIAlign`` emits a ``Squeeze`` with ``axes`` as an attribute, refused
from opset 13). ``dynamo=True`` takes the ``torch.export`` exporter (onnxscript) instead: it
exports our layers as well (TBC, DSC and DRConv checked at fixed and dynamic shapes), but it
cannot trace mmcv's compiled ops (``RoIAlign``: ``TorchExportError``).

    export_onnx(model.eval(), torch.rand(1, 3, 224, 224), 'model.onnx', dynamic=True)
    diff = max_abs_diff(model(x), run_onnxruntime('model.onnx', x))
"""
import io
import os
import re
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

# GridSample (DSC) is an ONNX op from opset 16; the TorchScript exporter stops at opset 20
SUPPORTED_OPSETS = range(16, 21)

Inputs = Union[Tensor, Sequence]


class OnnxExportError(ValueError):
    """A model that cannot be exported as asked; the message names the module and the reason."""


def export_onnx(model: nn.Module,
                inputs: Inputs,
                out: Union[str, os.PathLike],
                *,
                opset: int = 17,
                dynamic: bool = False,
                input_names: Sequence[str] = ('input', ),
                output_names: Optional[Sequence[str]] = None,
                dynamo: bool = False) -> str:
    """Export ``model`` (in eval mode) called on ``inputs`` to the ONNX file ``out``; its path.

    Args:
        model: an ``nn.Module`` in eval mode (every submodule).
        inputs: a tensor, or the tuple of positional arguments (tensors or lists of tensors:
            a neck's levels); the graph's inputs are these tensors in order.
        out: the ``.onnx`` file; written to ``.<name>.partial`` in the same folder first and
            renamed when the export and ``onnx.checker`` pass, so a failure leaves no file.
        opset: ONNX opset, one of :data:`SUPPORTED_OPSETS`.
        dynamic: batch, height and width of every 4-d input (batch of the others) and every
            dim of the outputs dynamic.
        input_names: names of the input tensors (the default ``'input'`` becomes ``input0``,
            ``input1``... for several).
        output_names: names of the flattened outputs (default ``output`` or ``output0``...).
        dynamo: use the ``torch.export`` exporter instead (module docstring).

    Raises:
        OnnxExportError: a module in train mode, an unsupported opset, a module the exporter
            cannot export (named by its path in ``model``) or a graph ``onnx.checker`` refuses.
    """
    _check_eval(model)
    if isinstance(opset, bool) or opset not in SUPPORTED_OPSETS:
        raise OnnxExportError(
            f'opset={opset!r} is not supported: use an int in {SUPPORTED_OPSETS.start}..'
            f'{SUPPORTED_OPSETS.stop - 1} (DSC samples with GridSample, an ONNX op from opset 16; '
            f"torch's TorchScript exporter stops at opset {SUPPORTED_OPSETS.stop - 1})")
    out = os.path.abspath(os.fspath(out))
    folder, name = os.path.split(out)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f'.{name}.partial')
    _remove(partial)  # left by a process killed during an earlier export
    args = (inputs, ) if isinstance(inputs, Tensor) else tuple(inputs)
    flat_inputs = _leaves(args, Tensor)
    stack = _ModuleStack(model)
    try:  # the outputs to name; a module that fails in PyTorch already is named as in export
        with stack, torch.no_grad():
            flat_outputs = _leaves(model(*args), Tensor)
    except Exception as err:
        raise _cannot_export(model, stack.innermost or model, opset, err) from err
    in_names = _names(input_names, len(flat_inputs), 'input', 'input_names')
    out_names = _names(output_names or ('output', ), len(flat_outputs), 'output',
                       'output_names')
    axes = _dynamic_axes(in_names, flat_inputs, out_names, flat_outputs) if dynamic else None

    def export(f, module=model, module_args=args, kwargs=None, **names):
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'You are using the legacy TorchScript-based ONNX',
                                    DeprecationWarning)
            # our layers' shape checks and static branches: their traces are tested at two sizes
            warnings.filterwarnings('ignore', category=torch.jit.TracerWarning, module=r'plugin\.')
            extra = dict(external_data=False) if dynamo else {}
            torch.onnx.export(module, module_args, f, kwargs=kwargs, opset_version=opset,
                              dynamo=dynamo, **names, **extra)

    try:
        with stack, torch.no_grad():
            export(partial, input_names=in_names, output_names=out_names, dynamic_axes=axes)
    except Exception as err:
        _remove(partial)
        culprit = stack.innermost or _failing_module(model, args, export, _reason(err))
        raise _cannot_export(model, culprit, opset, err) from err
    try:
        onnx.checker.check_model(partial)
    except Exception as err:
        _remove(partial)
        raise OnnxExportError(f'{_describe(model, model)}: the exported graph fails '
                              f'onnx.checker: {_reason(err)}') from err
    os.replace(partial, out)
    return out


def run_onnxruntime(path: Union[str, os.PathLike], inputs: Inputs,
                    threads: Optional[int] = None) -> List[np.ndarray]:
    """The outputs of the ONNX file ``path`` on ``inputs`` (as given to :func:`export_onnx`) in
    onnxruntime's ``CPUExecutionProvider``; ``threads``: its intra-op threads (default: all)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(os.fspath(path), options, providers=['CPUExecutionProvider'])
    tensors = _leaves((inputs, ) if isinstance(inputs, Tensor) else tuple(inputs), Tensor)
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(tensors):
        raise ValueError(f'{os.fspath(path)} takes {len(names)} inputs {names}, '
                         f'got {len(tensors)} tensors')
    return session.run(None, {n: t.detach().cpu().numpy() for n, t in zip(names, tensors)})


def max_abs_diff(torch_outputs, ort_outputs) -> float:
    """The largest absolute difference between PyTorch's outputs (a tensor or nested
    tuples/lists of them) and onnxruntime's (a list of arrays, in the same flattened order);
    NaN if either has a NaN. Raises ``ValueError`` if the counts or shapes differ."""
    ref = _leaves(torch_outputs, Tensor)
    got = _leaves(ort_outputs, (np.ndarray, np.generic))
    if len(ref) != len(got):
        raise ValueError(f'{len(ref)} PyTorch outputs against {len(got)} onnxruntime outputs')
    diffs = [0.]
    for i, (r, g) in enumerate(zip(ref, got)):
        r, g = r.detach().cpu().double().numpy(), np.asarray(g, dtype=np.float64)
        if r.shape != g.shape:
            raise ValueError(f'output {i}: shape {list(r.shape)} in PyTorch, '
                             f'{list(g.shape)} in onnxruntime')
        if r.size:
            diffs.append(np.abs(r - g).max())
    return float(np.max(diffs))  # NaN if any is


def _check_eval(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if module.training:
            raise OnnxExportError(
                f'{_describe(model, module, name)} is in train mode: call model.eval() before '
                f'exporting (train mode would export batch statistics and training paths)')


def _describe(model: nn.Module, module: nn.Module, name: Optional[str] = None) -> str:
    """``'backbone.layer1.0.conv2 (DRConv2d)'``, or ``'the model (RetinaNet)'``."""
    if name is None:
        name = next((n for n, m in model.named_modules() if m is module), '')
    return f'{name} ({type(module).__name__})' if name else f'the model ({type(module).__name__})'


def _cannot_export(model: nn.Module, culprit: nn.Module, opset: int,
                   err: Exception) -> OnnxExportError:
    return OnnxExportError(f'{_describe(model, culprit)} cannot be exported to ONNX '
                           f'(opset {opset}): {_reason(err)}')


def _reason(err: Exception) -> str:
    text = re.sub(r'\x1b\[[0-9;]*m', '', str(err))  # the torch.export exporter's colours
    lines = [line for line in text.splitlines() if line.strip()]
    reason = f'{type(err).__name__}: {lines[0] if lines else ""}'
    return reason if len(reason) <= 400 else reason[:397] + '...'


def _leaves(obj, kinds) -> list:
    """The leaves of type ``kinds`` in nested tuples/lists/dicts, in order."""
    if isinstance(obj, kinds):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [leaf for item in obj for leaf in _leaves(item, kinds)]
    raise TypeError(f'expected tensors or arrays in nested tuples/lists/dicts, got '
                    f'{type(obj).__name__}')


def _names(names: Sequence[str], count: int, stem: str, arg: str) -> List[str]:
    names = [names] if isinstance(names, str) else list(names)
    if len(names) == count:
        return names
    if names == [stem]:
        return [f'{stem}{i}' for i in range(count)]
    raise OnnxExportError(f'{arg} has {len(names)} names for {count} {stem} tensors')


def _dynamic_axes(in_names: List[str], inputs: List[Tensor], out_names: List[str],
                  outputs: List[Tensor]) -> Dict[str, Dict[int, str]]:
    images = sum(t.dim() == 4 for t in inputs)
    axes = {}
    for name, t in zip(in_names, inputs):
        if t.dim() == 4:
            prefix = '' if images == 1 else f'{name}_'
            axes[name] = {0: 'batch', 2: f'{prefix}height', 3: f'{prefix}width'}
        elif t.dim():
            axes[name] = {0: 'batch'}
    for name, t in zip(out_names, outputs):
        axes[name] = {i: f'{name}_dim{i}' for i in range(t.dim())}
    return axes


def _remove(path: str) -> None:
    if os.path.lexists(path):
        os.remove(path)


class _ModuleStack:
    """While active, the modules whose forward is running; after an exception inside a forward,
    :attr:`innermost` is the module it came from (``None`` if it came from outside any)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.stack, self.handles = model, [], []

    @property
    def innermost(self) -> Optional[nn.Module]:
        return self.stack[-1] if self.stack else None

    def __enter__(self):
        self.stack.clear()
        for module in self.model.modules():
            self.handles.append(module.register_forward_pre_hook(self._enter))
            self.handles.append(module.register_forward_hook(self._leave))
        return self

    def _enter(self, module: nn.Module, args) -> None:
        self.stack.append(module)

    def _leave(self, module: nn.Module, args, output) -> None:
        self.stack.pop()

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _failing_module(model: nn.Module, args: tuple, export: Callable, reason: str) -> nn.Module:
    """For an error after tracing (an op without an ONNX form): the deepest submodule that fails
    to export by itself for the same ``reason``, on the inputs it got in an eager run; ``model``
    if none does."""
    calls = {}
    def record(module: nn.Module, a: tuple, kw: dict) -> None:
        calls.setdefault(module, (a, kw))

    handles = [m.register_forward_pre_hook(record, with_kwargs=True) for m in model.modules()]
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()

    def fails(module: nn.Module) -> bool:
        a, kw = calls[module]
        try:
            with torch.no_grad():
                export(io.BytesIO(), module, a, kw or None)
        except Exception as err:
            return _reason(err) == reason
        return False

    module = model
    while True:
        child = next((c for c in module.children() if c in calls and fails(c)), None)
        if child is None:
            return module
        module = child
