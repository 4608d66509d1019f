"""The DSC tracer: where every Dynamic Stride Convolution's kernel centres land in IMAGE pixels.

Every DSC layer records its centres in its own input's pixels. Following the chain of
resolution-changing ops from the image to each DSC layer and composing their position maps puts
layer l's centres in image pixels (the inter-layer map of 张淑芳 et al., Acta Electronica Sinica
2024; the construction is ours, docs/dsc.md)::

    g_0 = identity,   g_l = g_{l-1} ∘ p_l      (p_l: output grid -> input pixels of op l)     (M1)

with p_l the recorded centres of a DSC layer and the plain centres s·i - p + d(k-1)/2 of any other
strided conv or pooling; stride-1 layers keep coordinates ("same" padding). ``∘`` is bilinear
interpolation of the previous map at the (fractional) positions, so g_l stays differentiable: the
allocation loss traces every training step with it. The maps need one forward and no backward;
:mod:`plugin.visualization.dsc_maps` draws them.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.dynamic_stride_conv import DynamicStrideConv2d, grid_centres


class DSCSampling(NamedTuple):
    """One DSC layer's kernel centres in image pixels (x, y) after a traced forward."""
    name: str
    positions: Tensor  # (N, Ho, Wo, 2), differentiable when traced with grad
    grid: Tensor  # (N, Ho, Wo, 2), the same layer's centres with every DSC offset at zero
    stride: float  # image pixels per output cell of the layer (plain grid)


def _plain_centres(module: nn.Module, out_hw: Sequence[int], device) -> Tensor:
    """(Ho, Wo, 2) centres of a conv / pooling on its input grid."""
    names = ('kernel_size', 'stride', 'padding', 'dilation')  # pooling has no dilation: 1
    geometry = [getattr(module, name, 1) for name in names]
    cs = []
    for axis in (1, 0):  # x (width) then y (height); torch stores pairs as (y, x)
        k, s, p, d = (v if isinstance(v, int) else v[axis] for v in geometry)
        cs.append(grid_centres(out_hw[axis], k, s, p, d, device))
    return torch.stack(torch.meshgrid(cs[0], cs[1], indexing='xy'), -1)


def _resample(mapping: Tensor, points: Tensor) -> Tensor:
    """``mapping`` (N, H, W, 2) evaluated at fractional pixel ``points`` (N, h, w, 2), bilinear."""
    h, w = mapping.shape[1:3]
    grid = torch.stack([(2 * points[..., 0] + 1) / w - 1, (2 * points[..., 1] + 1) / h - 1], -1)
    out = F.grid_sample(mapping.permute(0, 3, 1, 2), grid.to(mapping.dtype), mode='bilinear',
                        padding_mode='border', align_corners=False)
    return out.permute(0, 2, 3, 1)


def _is_strided(module: nn.Module) -> bool:
    if isinstance(module, DynamicStrideConv2d):
        return True
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if isinstance(module.stride, (tuple, list)) else (module.stride, )
        return max(stride) > 1
    return False


class DSCTracer:
    """Records the resolution chain and the DSC centres of one forward of ``module`` (eq. M1).

    Use as ``with DSCTracer(backbone) as tracer: backbone(x)``, then :meth:`sampling`. Candidates:
    the strided convs and poolings outside DSC layers (their offset branches are not on the chain)
    and the DSC layers; an op joins the chain when its input has the chain's current resolution,
    which leaves out parallel branches such as a plain strided shortcut.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        inner = {id(m) for d in module.modules() if isinstance(d, DynamicStrideConv2d)
                 for m in d.modules() if m is not d}
        self.ops = [(name, m) for name, m in module.named_modules()
                    if _is_strided(m) and id(m) not in inner]
        self._handles = []

    def __enter__(self) -> 'DSCTracer':
        self.image_hw: Optional[Tuple[int, int]] = None
        self.calls: List[tuple] = []  # (name, module, input size, output size, live centres)
        self._live: Dict[int, Tensor] = {}

        def on_input(module, args):
            if self.image_hw is None:
                self.image_hw, self.device = tuple(args[0].shape[-2:]), args[0].device

        def on_positions(layer, positions):
            self._live[id(layer)] = positions

        def on_output(name):
            def hook(module, args, output):
                centres = self._live.pop(id(module), None)
                self.calls.append((name, module, tuple(args[0].shape[-2:]),
                                   tuple(output.shape[-2:]), centres))
            return hook

        self._handles.append(self.module.register_forward_pre_hook(on_input))
        for name, m in self.ops:
            if isinstance(m, DynamicStrideConv2d):
                self._handles.append(m.register_position_hook(on_positions))
            self._handles.append(m.register_forward_hook(on_output(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._live = {}

    def sampling(self) -> List[DSCSampling]:
        """Centres of every DSC layer of the traced forward, in image pixels (eq. M1)."""
        if self.image_hw is None:
            raise RuntimeError('DSCTracer.sampling() needs a forward inside the with-block')
        hw = self.image_hw
        mapping = grid = None  # image pixels of the current grid's cells; None: the image itself
        stride = 1.0
        out = []
        for name, module, in_hw, out_hw, centres in self.calls:
            if in_hw != hw:
                if centres is not None:
                    raise RuntimeError(f'DSC layer {name} sees a {in_hw} input where the chain '
                                       f'of strided ops gives {hw}: stride-1 layers must keep '
                                       'the size')
                continue  # a parallel branch (e.g. a plain strided shortcut)
            plain = _plain_centres(module, out_hw, self.device)
            batch = centres.shape[0] if centres is not None else \
                1 if mapping is None else mapping.shape[0]
            plain = plain.expand(batch, *plain.shape)
            centres = plain if centres is None else centres
            if mapping is None:
                mapping, grid = centres, plain
            else:
                mapping, grid = (t.expand(batch, *t.shape[1:]) for t in (mapping, grid))
                mapping, grid = _resample(mapping, centres), _resample(grid, plain)
            stride *= module.stride[0] if isinstance(module.stride, tuple) else module.stride
            if isinstance(module, DynamicStrideConv2d):
                out.append(DSCSampling(name, mapping, grid, float(stride)))
            hw = out_hw
        return out
