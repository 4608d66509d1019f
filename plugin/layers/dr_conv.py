"""Dynamic Region-Aware Convolution (DRConv), registered as conv layer ``'DRConv'``.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243), Sec. 3. A guide convolution splits the output positions into
``m`` regions (the guided mask), a filter generator makes ``m`` filters per sample, and every
position is convolved with its region's filter. The region-routed ops and the softmax surrogate
gradient live in :mod:`.dr_conv_function`.
"""
import math
from math import prod
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.analysis.jit_handles import get_shape
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from ..analysis.complexity import register_flop_handle
from .dr_conv_function import region_matmul, region_select

IntOrPair = Union[int, Sequence[int]]


class DRFilterGenerator(nn.Module):
    """Filter generator ``G(X)`` (Sec. 3.2): adaptive average pooling to ``k x k``, a 1x1 conv and
    activation (:meth:`hidden`, ``m g`` channels), and a 1x1 conv with ``groups=m`` (``weight``,
    ``bias``), giving ``m`` filters ``[O, C, k, k]`` per sample. With the activation ``a``,

        W[b, j, :, :, t] = sum_q V[j, q] a[b, j g + q, t] + V0[j]      (tap t of the k x k grid),

    ``V[j, q] = weight[j, :, :, q]`` and ``V0[j] = bias[j]`` (``O x C`` each). The grouped conv's
    weights are plain parameters, not an ``nn.Conv2d``, so that a backbone's Kaiming init of every
    ``Conv2d`` (fan-in ``g``) leaves their own init alone: generated filters start at about
    Kaiming scale for a fan-in of ``C k k``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Tuple[int, int],
                 region_num: int, hidden_channels: int, act_cfg: dict):
        super().__init__()
        self.region_num, self.kernel_size = region_num, kernel_size
        self.pool = nn.AdaptiveAvgPool2d(kernel_size)
        self.reduce = nn.Conv2d(in_channels, hidden_channels, 1)
        self.act = build_activation_layer(act_cfg)
        per_region = hidden_channels // region_num
        self.weight = nn.Parameter(torch.empty(region_num, out_channels, in_channels, per_region))
        self.bias = nn.Parameter(torch.empty(region_num, out_channels, in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight.shape[2] * self.kernel_size[0] * self.kernel_size[1]
        nn.init.normal_(self.weight, std=math.sqrt(2 / (fan_in * self.weight.shape[3])))
        nn.init.normal_(self.bias, std=math.sqrt(2 / fan_in))

    def hidden(self, x: Tensor) -> Tensor:
        return self.act(self.reduce(self.pool(x)))  # [B, m g, k, k]

    def forward(self, x: Tensor) -> Tensor:
        """The filters ``[B, m, O, C, k, k]``."""
        m, o, c, g = self.weight.shape
        w = F.conv2d(self.hidden(x), self.weight.reshape(m * o * c, g, 1, 1),
                     self.bias.reshape(-1), groups=m)
        return w.view(x.shape[0], m, o, c, *w.shape[2:])


@MODELS.register_module('DRConv')
class DRConv2d(BaseModule):
    """DRConv: ``Y[u, v] = W_{M[u, v]} * X`` at output position ``(u, v)`` (Eq. 3).

    * Guided mask (Sec. 3.1): ``guide`` (a plain conv, ``m`` output channels) gives the guided
      feature ``F``; ``M = argmax_j F_j`` (Eq. 4). The kernel centre of an output position decides
      its region because ``F`` is computed at the output positions (same stride, aligned padding).
      The argmax is trained with the softmax surrogate gradient of Eq. 6-8.
    * Filters: :class:`DRFilterGenerator`, ``m`` sample-specific filters.
    * ``m = 1`` is a sample-specific dynamic convolution (no guide is built).

    Two implementations give the same outputs and gradients. ``impl='reference'`` convolves with
    all ``m`` generated filters and keeps each position's (:func:`region_select`): ``m`` times a
    convolution's FLOPs and output memory, forward and backward. ``impl='fast'`` takes the cheaper
    of two exact paths, by multiply-adds for the input's size (:meth:`factorise`), separately for
    training and inference (the surrogate needs every region's output at every position, ``m``
    convolutions' worth, in training only):

    * unfolded: each position's patch times its own region's filter (:func:`region_matmul`, a
      segment-wise GEMM on patches gathered in region order); one convolution's FLOPs forward,
      three plus ``m`` in training;
    * factorised: tap ``t`` of ``W_j`` is ``sum_q V[j, q] a[j g + q, t] + V0[j]``, so ``W_j * X``
      is ``g + 1`` depthwise convs of ``X`` (kernels ``a[j g + q]`` and ones) and a 1x1 conv with
      ``[V[j], V0[j]]``: every region's output for ``m (g + 1) (O + k k)`` multiply-adds per
      position and channel instead of ``m k k O``, then :func:`region_select`. It wins for
      ``k > 1`` with a narrow generator (the default ``g = 1``).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as ``nn.Conv2d``.
        groups: must be 1 (accepted because ``build_conv_layer`` callers pass it).
        region_num: ``m``, the number of regions and filters per sample.
        guide_kernel_size: kernel of the guide conv (default: ``kernel_size``); its padding is
            chosen so that ``F`` has the output's size, which must be possible.
        gen_channels: hidden width of the filter generator, a multiple of ``m``; default ``m``
            (one hidden unit per region filter; the paper does not give it).
        gen_act_cfg: activation after the generator's first 1x1 conv (the paper: sigmoid).
        impl: ``'fast'`` or ``'reference'``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 region_num: int = 8,
                 guide_kernel_size: Optional[IntOrPair] = None,
                 gen_channels: Optional[int] = None,
                 gen_act_cfg: dict = dict(type='Sigmoid'),
                 impl: str = 'fast',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, value in dict(in_channels=in_channels, out_channels=out_channels,
                                region_num=region_num).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if groups != 1:
            raise ValueError(f'DRConv supports groups=1 only, got groups={groups!r}')
        if impl not in ('fast', 'reference'):
            raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")
        kernel_size, stride, padding, dilation = map(_pair, (kernel_size, stride, padding,
                                                             dilation))
        for name, pair, low in (('kernel_size', kernel_size, 1), ('stride', stride, 1),
                                ('padding', padding, 0), ('dilation', dilation, 1)):
            if not all(isinstance(v, int) and v >= low for v in pair):
                raise ValueError(f'{name} must be ints >= {low}, got {pair!r}')
        gen_channels = region_num if gen_channels is None else gen_channels
        if not isinstance(gen_channels, int) or gen_channels < 1 or gen_channels % region_num:
            raise ValueError(f'gen_channels must be a positive multiple of region_num='
                             f'{region_num}, got {gen_channels!r}')
        guide_kernel_size = _pair(guide_kernel_size or kernel_size)
        # F and Y have the same size iff both convs lose as many border positions
        guide_padding = tuple(
            (2 * p - d * (k - 1) + d * (kg - 1)) / 2
            for p, d, k, kg in zip(padding, dilation, kernel_size, guide_kernel_size))
        if not all(isinstance(v, int) and v >= 1 for v in guide_kernel_size) or \
                not all(p >= 0 and p == int(p) for p in guide_padding):
            raise ValueError(
                f'guide_kernel_size={guide_kernel_size} cannot give a guided feature of the '
                f'output size with kernel_size={kernel_size}, padding={padding}, '
                f'dilation={dilation} (needs a non-negative integer padding, got {guide_padding})')

        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding, self.dilation = (kernel_size, stride,
                                                                      padding, dilation)
        self.transposed, self.output_padding = False, (0, 0)  # read by mmcv's ConvModule
        self.region_num, self.impl = region_num, impl
        self.guide = nn.Conv2d(in_channels, region_num, guide_kernel_size, stride,
                               tuple(map(int, guide_padding)), dilation,
                               bias=False) if region_num > 1 else None
        self.generator = DRFilterGenerator(in_channels, out_channels, kernel_size, region_num,
                                           gen_channels, gen_act_cfg)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    # generating one filter element (a 1x1 conv with g inputs per output, memory-bound) takes
    # about as long as 40 multiply-adds of a GEMM: fitted to CPU timings of 3x3 DRConvs with
    # 64-512 channels on 7x7 to 56x56 maps (docs/drconv.md); it decides late, small stages
    FILTER_ELEMENT_COST = 40

    def factorise(self, positions: int, training: bool) -> bool:
        """Whether the factorised path is cheaper than the unfolded one for an image with
        ``positions`` output positions (multiply-adds per input channel; class docstring):
        unfolded, each position's own filter (``k k O``; training: the surrogate adds ``m`` of
        them) plus generating the ``m`` filters once per image (``m O k k (g + 1)`` at
        ``FILTER_ELEMENT_COST``); factorised, every region's ``g + 1`` depthwise convs and 1x1
        conv (``m (g + 1) (O + k k)``) per position, no filters."""
        if self.region_num == 1:
            return False
        m, o = self.region_num, self.out_channels
        taps = self.kernel_size[0] * self.kernel_size[1]
        g = self.generator.weight.shape[3]
        passes = 3 if training else 1  # forward, then grad-input and grad-weight
        dense = positions * m * (g + 1) * (o + taps)
        own = positions * taps * o * (passes + (m if training else 0))  # + the surrogate's m
        filters = self.FILTER_ELEMENT_COST * m * o * taps * (g + 1) * passes
        return passes * dense < own + filters

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        conv = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        if self.guide is None:  # m = 1: one sample-specific filter, a grouped conv
            weight = self.generator(x).reshape(-1, c, *self.kernel_size)
            y = F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b, **conv)
            y = y.view(b, self.out_channels, *y.shape[2:])
        elif self.impl == 'reference':
            weight = self.generator(x).reshape(-1, c, *self.kernel_size)
            y_all = F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b, **conv)
            y = region_select(y_all.view(b, self.region_num, -1, *y_all.shape[2:]), self.guide(x))
        elif self.factorise(prod(self._out_size(h, w)), torch.is_grad_enabled()):
            y = region_select(self._factorised(x), self.guide(x))
        else:
            weight = self.generator(x).reshape(b, self.region_num, self.out_channels, -1)
            y = _region_matmul(x, weight, self.guide(x), self.kernel_size, self.stride,
                               self.padding, self.dilation)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y

    def _out_size(self, h: int, w: int) -> Tuple[int, int]:
        return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in zip(
            (h, w), self.padding, self.dilation, self.kernel_size, self.stride))

    def _factorised(self, x: Tensor) -> Tensor:
        """Every region's output ``[B, m, O, Ho, Wo]`` from the generator's factorisation:
        ``g + 1`` depthwise convs of ``x`` per region (kernels ``a[j g + q]`` and ones), then a
        1x1 conv with ``[V[j], V0[j]]`` (``O x C (g + 1)``) per region, as one batched matmul."""
        b, c, h, w = x.shape
        m, gen = self.region_num, self.generator
        a = gen.hidden(x)  # [B, m g, kh, kw]
        g = a.shape[1] // m
        kernels = torch.cat([a.view(b, m, g, *a.shape[2:]), a.new_ones(b, m, 1, *a.shape[2:])], 2)
        kernels = kernels.view(b, 1, m * (g + 1), *a.shape[2:]).expand(-1, c, -1, -1, -1)
        z = F.conv2d(x.reshape(1, b * c, h, w), kernels.reshape(-1, 1, *a.shape[2:]), None,
                     self.stride, self.padding, self.dilation, groups=b * c)
        ho, wo = z.shape[2:]
        z = z.view(b, c, m, (g + 1) * ho * wo).transpose(1, 2)  # [B, m, C, (g + 1) Ho Wo]
        z = z.reshape(b, m, c, g + 1, ho * wo).flatten(2, 3)  # [B, m, C (g + 1), Ho Wo]
        weight = torch.cat([gen.weight, gen.bias.unsqueeze(3)], 3).flatten(2)  # [m, O, C (g+1)]
        y_all = torch.matmul(weight.to(z.dtype), z)  # [B, m, O, Ho Wo]
        return y_all.view(b, m, self.out_channels, ho, wo)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, padding={self.padding}, dilation={self.dilation}, '
                f'region_num={self.region_num}, impl={self.impl!r}')


def _region_matmul(x: Tensor, weight: Tensor, guide: Tensor, *conv: Tuple[int, int]) -> Tensor:
    """:func:`region_matmul` in one dtype: the autocast one when autocast is on."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return region_matmul(x.to(dtype), weight.to(dtype), guide, *conv)
    return region_matmul(x, weight.to(x.dtype), guide, *conv)


def _region_matmul_flops(inputs: list, outputs: list) -> int:
    """One multiply-add per output element and column (``O x K`` per position), as a conv."""
    return prod(get_shape(outputs[0])) * get_shape(inputs[1])[-1]


register_flop_handle('prim::PythonOp._RegionMatmul', _region_matmul_flops)
register_flop_handle('prim::PythonOp._RegionSelect', lambda inputs, outputs: 0)  # a gather
