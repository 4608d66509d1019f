"""Dynamic Stride Convolution (DSC).

Paper: 张淑芳 et al., "Dynamic Stride Convolution and Its Inter-Layer Interpretable Method", Acta
Electronica Sinica 2024, 52(10). Only the abstract is public (a strided convolution whose stride is
modified by learned, input-dependent offsets); the equations below are this plugin's design
(docs/dsc.md says what is the abstract's and what is ours).

A plain convolution of stride s, padding p, dilation d and kernel K evaluates its kernel at the
centres c(i, j) = s·(i, j) - p + d·(K - 1) / 2. DSC moves every centre by one learned displacement,
shared by all K×K taps of that output position::

    y(i, j) = Σ_k W_k · x(c(i, j) + Δ(i, j) + d·(k - (K-1)/2))    (bilinear, zero outside)  (D1)
    Δ = tanh(o(x)) ⊙ b±,   b± = min(m·s, distance from c to the image border on that side)  (D2)

``o`` is a 2-channel conv branch of stride s (``conv_offset``), zero-initialised, so DSC starts as
the plain strided conv; ``m = max_displacement`` (in strides) <= 0.5 keeps neighbouring samples in
order (the sampling grid cannot fold); b± keeps every centre inside the image.

Since Δ is shared by the taps, every tap of a position has the same four bilinear weights: the
sampled im2col columns are ONE weighted gather of the four integer-corner rows (``embedding_bag``
in channels-last layout) and the output is ONE GEMM with the unchanged weight (:func:`dsc_conv2d`).
Exported to ONNX, the layer samples every tap with ``grid_sample`` (ONNX ``GridSample``, opset 16)
and convolves with stride ``K``, whatever the channels: the same function in standard ops, and in
onnxruntime faster than the gather written in its ops (``embedding_bag`` would export as a
``Loop``).
"""
from collections import OrderedDict
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torch.utils.hooks import RemovableHandle

from .inputs import check_input, empty_output


class _BilinearGather(torch.autograd.Function):
    """``cols[b] = Σ_{j in bag b} w_j · rows[idx_j]`` (bags of 4 corners), fast exact backward.

    ``rows`` receives ``Σ w_j · grad[b]`` through the inverse mapping (indices sorted by row, one
    ``embedding_bag`` again) instead of torch's generic dense backward; ``w`` receives
    ``<grad[b], rows[idx_j]>``.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, weights: Tensor, idx: Tensor) -> Tensor:
        offsets = torch.arange(0, idx.numel(), 4, device=idx.device)
        ctx.save_for_backward(rows, weights, idx, offsets)
        # detached: torch then takes its forward-only kernel (no bookkeeping for its own backward)
        return F.embedding_bag(idx, rows.detach(), offsets, mode='sum',
                               per_sample_weights=weights.detach())

    @staticmethod
    def backward(ctx, grad: Tensor):
        rows, weights, idx, offsets = ctx.saved_tensors
        grad = grad.contiguous()
        grad_rows = grad_weights = None
        if ctx.needs_input_grad[0]:
            _, order = torch.sort(idx)
            counts = torch.bincount(idx, minlength=rows.shape[0])
            starts = torch.cumsum(counts, 0) - counts  # first entry of each row in ``order``
            grad_rows = F.embedding_bag(order // 4, grad, starts, mode='sum',
                                        per_sample_weights=weights[order])
        if ctx.needs_input_grad[1]:
            bag_of = torch.arange(idx.numel(), device=idx.device) // 4
            grad_weights = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                grad, rows, idx, offsets, bag_of, 0, -1)
        return grad_rows, grad_weights, None


# Below this many input channels per group, sampling every tap with grid_sample (NCHW, fused
# bilinear) beats gathering rows of channels (tools/benchmark/bench_dsc.py, "paths" table).
GATHER_MIN_CHANNELS = 16


def dsc_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], positions: Tensor,
               dilation: Sequence[int] = (1, 1), groups: int = 1) -> Tensor:
    """Convolution whose kernel centres are ``positions`` (eq. D1), bilinear with zero padding.

    Args:
        x: (N, C, H, W) input, any memory format (channels-last saves a transposing copy).
        weight, bias: as ``nn.Conv2d`` (O, C / groups, Kh, Kw) and (O,) or None.
        positions: (N, Ho, Wo, 2) kernel centres (x, y) in ``x``'s pixel coordinates (pixel i at
            coordinate i); taps falling outside the image read zeros.
        dilation, groups: as ``nn.Conv2d``.
    Returns:
        (N, O, Ho, Wo), channels-last in memory on the gather path. With ``positions`` on the
        grid of a conv of stride s and padding p (``s·i - p + d·(K - 1) / 2``) it equals
        ``F.conv2d(x, weight, bias, s, p, dilation, groups)``, values and gradients.
    """
    if x.shape[0] == 0:
        out_size = (x.shape[0], weight.shape[0], *positions.shape[1:3])
        return empty_output(x, out_size, (weight, bias, positions))
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            return dsc_conv2d(x.to(dtype), weight.to(dtype), bias, positions, dilation, groups)
    positions = positions.to(torch.promote_types(positions.dtype, torch.float32))
    # exported: GridSample (opset 16); in onnxruntime faster than the gather in ONNX ops
    if torch.onnx.is_in_onnx_export() or x.shape[1] // groups < GATHER_MIN_CHANNELS:
        return _grid_sample_conv(x, weight, bias, positions, dilation, groups)
    return _gather_conv(x, weight, bias, positions, dilation, groups)


def _gather_conv(x, weight, bias, positions, dilation, groups):
    """Sampled columns = one weighted gather of channel rows (4 corners per tap), then ONE GEMM."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    _, ho, wo, _ = positions.shape
    dh, dw = dilation
    m = n * ho * wo
    rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view of channels-last memory

    top_left = positions - positions.new_tensor([dw * (kw - 1) / 2, dh * (kh - 1) / 2])
    corner = top_left.floor()
    fx, fy = (top_left - corner).view(m, 1, 2).unbind(-1)  # bilinear fractions, differentiable
    pair = torch.arange(2, device=x.device)
    # integer columns / rows of the two corners of every tap; outside the image: weight 0
    xs = corner[..., 0].long().view(m, 1, 1) + _steps(kw, dw, x.device) + pair
    ys = corner[..., 1].long().view(m, 1, 1) + _steps(kh, dh, x.device) + pair
    wx = torch.stack([1 - fx, fx], -1) * ((xs >= 0) & (xs < w))  # (M, Kw, 2)
    wy = torch.stack([1 - fy, fy], -1) * ((ys >= 0) & (ys < h))  # (M, Kh, 2)
    batch = torch.arange(n, device=x.device).repeat_interleave(ho * wo).view(m, 1, 1)
    row_of_y = (batch * h + ys.clamp(0, h - 1)) * w
    idx = (row_of_y.view(m, kh, 1, 2, 1) + xs.clamp(0, w - 1).view(m, 1, kw, 1, 2)).view(-1)
    taps = (wy.view(m, kh, 1, 2, 1) * wx.view(m, 1, kw, 1, 2)).to(x.dtype).view(-1)

    if torch.is_grad_enabled() and (rows.requires_grad or taps.requires_grad):
        cols = _BilinearGather.apply(rows, taps, idx)
    else:  # plain ops: traceable, counted by the FLOP analyzer (embedding_bag + mm)
        cols = F.embedding_bag(idx, rows, torch.arange(0, idx.numel(), 4, device=x.device),
                               mode='sum', per_sample_weights=taps)
    if groups == 1:  # (O, Kh*Kw*C); for 1x1 a plain view, so the weight's grad keeps its strides
        w2 = weight.flatten(1) if kh * kw == 1 else weight.permute(0, 2, 3, 1).reshape(o, -1)
        cols = cols.view(m, -1)
        out = cols @ w2.t() if bias is None else torch.addmm(bias, cols, w2.t())
    else:
        cg, og = c // groups, o // groups
        cols = cols.view(m, kh * kw, groups, cg).permute(2, 0, 1, 3).reshape(groups, m, -1)
        w2 = weight.view(groups, og, cg, kh, kw).permute(0, 1, 3, 4, 2).reshape(groups, og, -1)
        out = torch.bmm(cols, w2.transpose(1, 2)).permute(1, 0, 2).reshape(m, o)
        if bias is not None:
            out = out + bias
    return out.view(n, ho, wo, o).permute(0, 3, 1, 2)  # channels-last memory


def _grid_sample_conv(x, weight, bias, positions, dilation, groups):
    """Few channels: sample all taps into a (Ho*Kh, Wo*Kw) image, then a conv of stride K."""
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    _, ho, wo, _ = positions.shape
    ky = (torch.arange(kh, device=x.device, dtype=positions.dtype) - (kh - 1) / 2) * dilation[0]
    kx = (torch.arange(kw, device=x.device, dtype=positions.dtype) - (kw - 1) / 2) * dilation[1]
    shape = (n, ho, kh, wo, kw)
    tx = (positions[..., 0].view(n, ho, 1, wo, 1) + kx.view(1, 1, 1, 1, kw)).expand(shape)
    ty = (positions[..., 1].view(n, ho, 1, wo, 1) + ky.view(1, 1, kh, 1, 1)).expand(shape)
    grid = torch.stack([(2 * tx + 1) / w - 1, (2 * ty + 1) / h - 1], -1)
    grid = grid.view(n, ho * kh, wo * kw, 2)  # pixel p at (2p + 1) / size - 1 (align_corners=False)
    sampled = F.grid_sample(x.to(grid.dtype), grid, mode='bilinear', padding_mode='zeros',
                            align_corners=False)
    return F.conv2d(sampled.to(x.dtype), weight, bias, stride=(kh, kw), groups=groups)


def _steps(kernel: int, dilation: int, device) -> Tensor:
    """(1, kernel, 1) tap offsets ``d·k`` along one axis."""
    return (torch.arange(kernel, device=device) * dilation).view(1, kernel, 1)


def grid_centres(out_size: int, kernel: int, stride: int, padding: int, dilation: int,
                 device=None, dtype=torch.float32) -> Tensor:
    """Kernel centres ``s·i - p + d·(k - 1) / 2`` of a plain conv along one axis."""
    return torch.arange(out_size, device=device, dtype=dtype) * stride - padding + \
        dilation * (kernel - 1) / 2


@MODELS.register_module('DSC')
class DynamicStrideConv2d(nn.Conv2d):
    """Strided convolution evaluated at learned, input-dependent centres (eqs. D1, D2).

    Built like a conv layer: ``build_conv_layer(dict(type='DSC', max_displacement=0.5), in, out, 3,
    stride=2, padding=1, bias=False)``. ``weight``/``bias`` are ``nn.Conv2d``'s, so a plain
    strided conv's checkpoint loads (``conv_offset.*`` keys are new and start at zero).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            ``nn.Conv2d`` (integers or pairs; zero padding only).
        offset_kernel_size: kernel of the offset branch ``o``, a stride-s conv centred on the same
            centres as the main kernel (its parity must allow that: odd for the usual odd kernels).
        max_displacement: m in eq. D2, the largest displacement in units of the stride
            (< 0.5 keeps the sampling order; up to 1 lets a sample reach its neighbour's place).

    After each forward, :attr:`positions` holds the (detached) kernel centres, (N, Ho, Wo, 2) as
    (x, y) in input pixels. Consumers that need them differentiable (the allocation loss) register
    :meth:`register_position_hook` for the forward they trace; the layer itself keeps no graph.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=2,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = True,
                 offset_kernel_size: int = 3,
                 max_displacement: float = 0.5) -> None:
        for name, value in (('kernel_size', kernel_size), ('stride', stride),
                            ('padding', padding), ('dilation', dilation)):
            pair = _pair(value)
            if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
                raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
            if min(pair) < (0 if name == 'padding' else 1):
                kind = 'non-negative' if name == 'padding' else 'positive'
                raise ValueError(f'{name} must be {kind}, got {value!r}')
        if not (isinstance(max_displacement, (int, float)) and max_displacement > 0):
            raise ValueError(f'max_displacement must be a positive number (in strides), '
                             f'got {max_displacement!r}')
        if not (isinstance(offset_kernel_size, int) and offset_kernel_size >= 1):
            raise ValueError(f'offset_kernel_size must be a positive int, '
                             f'got {offset_kernel_size!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias)
        offset_padding = []
        for k, p, d in zip(self.kernel_size, self.padding, self.dilation):
            total = 2 * p - d * (k - 1) + offset_kernel_size - 1  # both sides, centres aligned
            if total < 0 or total % 2:
                raise ValueError(
                    f'offset_kernel_size={offset_kernel_size} cannot be centred on the centres of '
                    f'kernel_size={self.kernel_size}, padding={self.padding}, dilation='
                    f'{self.dilation}: 2*padding - dilation*(kernel_size-1) + '
                    f'offset_kernel_size - 1 must be even and >= 0')
            offset_padding.append(total // 2)
        self.offset_kernel_size = offset_kernel_size
        self.max_displacement = float(max_displacement)
        self.conv_offset = nn.Conv2d(in_channels, 2, offset_kernel_size, self.stride,
                                     tuple(offset_padding))
        self.positions: Optional[Tensor] = None
        self._position_hooks: 'OrderedDict[int, Callable]' = OrderedDict()
        self.init_weights()

    def init_weights(self) -> None:
        """Zero offsets, the plain strided conv (mmengine calls it after a parent's init)."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def register_position_hook(self, hook: Callable[[nn.Module, Tensor], None]) -> RemovableHandle:
        """``hook(layer, positions)`` runs in every forward with the differentiable centres."""
        handle = RemovableHandle(self._position_hooks)
        self._position_hooks[handle.id] = hook
        return handle

    def sampling_positions(self, offset: Tensor, size: Tuple[int, int]) -> Tensor:
        """Kernel centres (N, Ho, Wo, 2) from the raw offset map (N, 2, Ho, Wo) (eq. D2)."""
        t = torch.tanh(offset.to(torch.promote_types(offset.dtype, torch.float32)))
        t = t.permute(0, 2, 3, 1)
        ho, wo = t.shape[1:3]
        centres = []
        for axis, (n_in, n_out) in enumerate(((size[1], wo), (size[0], ho))):  # x then y
            i = 1 - axis  # (kernel, stride, ...) are stored as (y, x)
            c = grid_centres(n_out, self.kernel_size[i], self.stride[i], self.padding[i],
                             self.dilation[i], t.device, t.dtype)
            reach = self.max_displacement * self.stride[i]
            lower = c.clamp(max=reach).clamp(min=0)  # room towards 0
            upper = (n_in - 1 - c).clamp(max=reach).clamp(min=0)  # room towards n_in - 1
            d = t[..., axis]
            view = (1, 1, n_out) if axis == 0 else (1, n_out, 1)
            bound = torch.where(d >= 0, upper.view(view), lower.view(view))
            centres.append(c.view(view) + d * bound)
        return torch.stack(centres, -1)

    def forward(self, x: Tensor) -> Tensor:
        check_input('DynamicStrideConv2d', x, self.in_channels)
        x = x.contiguous(memory_format=torch.channels_last)  # the gather reads rows of channels
        positions = self.sampling_positions(self.conv_offset(x), x.shape[-2:])
        self.positions = positions.detach()
        for hook in self._position_hooks.values():
            hook(self, positions)
        return dsc_conv2d(x, self.weight, self.bias, positions, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', offset_kernel_size={self.offset_kernel_size}, '
                f'max_displacement={self.max_displacement}')
