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
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from .dr_conv_function import region_factor_conv, region_matmul, region_select
from .dr_conv_onnx import adaptive_avg_pool2d, region_factor_conv_onnx
from .inputs import check_input, empty_output

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
        pooled = adaptive_avg_pool2d(x, self.kernel_size) if torch.onnx.is_in_onnx_export() \
            else self.pool(x)
        return self.act(self.reduce(pooled))  # [B, m g, k, k]

    def factors(self) -> Tensor:
        """``V`` with ``V0`` as its last factor, ``[m, g + 1, O, C]``."""
        return torch.cat([self.weight.permute(0, 3, 1, 2), self.bias.unsqueeze(1)], 1)

    def forward(self, x: Tensor) -> Tensor:
        """The filters ``[B, m, O, C, k, k]``."""
        m, o, c, g = self.weight.shape
        a = self.hidden(x).view(x.shape[0], m, g, 1, -1)  # the grouped 1x1 conv, as g fused
        w = self.bias.view(1, m, o * c, 1)  # multiply-adds (g is small: a conv is slow here)
        for q in range(g):
            w = torch.addcmul(w, self.weight[..., q].reshape(1, m, o * c, 1), a[:, :, q])
        return w.view(x.shape[0], m, o, c, *self.kernel_size)


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
    of two exact paths that compute only each position's own region, by multiply-adds for the
    input's size (:meth:`factorise`), separately for training and inference:

    * factorised (:func:`region_factor_conv`): tap ``t`` of ``W_j`` is
      ``sum_q V[j, q] a[j g + q, t] + V0[j]``, so ``W_j * X`` is ``g + 1`` sums of the taps of
      ``X`` (weights ``a[j g + q]`` and ones) and a 1x1 conv with each ``V[j, q]``:
      ``(g + 1) (k k + O)`` multiply-adds per position and input channel instead of ``k k O``,
      no filters generated. The surrogate adds ``m (g + 1) O`` in training. It wins for
      ``k > 1`` with a narrow generator (the default ``g = 1``);
    * unfolded (:func:`region_matmul`): each position's patch times its own region's generated
      filter; one convolution's FLOPs forward, three plus ``m`` in training. It wins for 1x1
      convolutions, which have no taps to factor out (but on tiny maps, where generating the
      filters costs more than the convolution).

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

    # generating one filter element and reading it in the unfolded GEMM (memory-bound) costs
    # about as much as 2 multiply-adds: with it the choice picks the faster path in the timings
    # of docs/drconv.md ("the choice"; tools/benchmark/bench_drconv.py --paths)
    FILTER_ELEMENT_COST = 2

    def factorise(self, positions: int, training: bool) -> bool:
        """Whether the factorised path is cheaper than the unfolded one for an image with
        ``positions`` output positions, in multiply-adds per input channel (class docstring).
        Unfolded: each position's own filter, ``k k O`` (training: three passes plus the
        surrogate's ``m``), and generating the ``m`` filters once per image (``m O k k (g + 1)``
        at ``FILTER_ELEMENT_COST``, three times in training). Factorised, per position:
        ``(g + 1) (k k + O)`` forward; training adds every region's tap sums
        (``(m g + 1) k k``), the surrogate's ``m (g + 1) O``, and the own region's weight,
        kernel and patch gradients (``(g + 1) (O + 2 k k)``)."""
        if self.region_num == 1:
            return False
        m, o = self.region_num, self.out_channels
        taps = self.kernel_size[0] * self.kernel_size[1]
        g = self.generator.weight.shape[3]
        factorised = (g + 1) * (taps + o)
        if training:
            factorised += (m * g + 1) * taps + m * (g + 1) * o + (g + 1) * (o + 2 * taps)
        passes = 3 if training else 1  # forward, then grad-input and grad-weight
        own = taps * o * (passes + (m if training else 0))
        filters = self.FILTER_ELEMENT_COST * m * o * taps * (g + 1) * passes
        return positions * factorised < positions * own + filters

    def forward(self, x: Tensor) -> Tensor:
        check_input('DRConv2d', x, self.in_channels)
        b, c, h, w = x.shape
        if b == 0:  # no sample, no filter: zero gradients for every parameter
            return empty_output(x, (0, self.out_channels, *self._out_size(h, w)),
                                self.parameters())
        conv = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        geometry = (self.kernel_size, self.stride, self.padding, self.dilation)
        if torch.onnx.is_in_onnx_export():  # the same function in standard ops (dr_conv_onnx)
            guide = None if self.guide is None else self.guide(x)
            y = region_factor_conv_onnx(x, self.generator.hidden(x), self.generator.factors(),
                                        guide, *geometry)
        elif self.guide is None:  # m = 1: one sample-specific filter, a grouped conv
            weight = self.generator(x).reshape(-1, c, *self.kernel_size)
            y = F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b, **conv)
            y = y.view(b, self.out_channels, *y.shape[2:])
        elif self.impl == 'reference':
            weight = self.generator(x).reshape(-1, c, *self.kernel_size)
            y_all = F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b, **conv)
            y = region_select(y_all.view(b, self.region_num, -1, *y_all.shape[2:]), self.guide(x))
        else:  # the fast paths work on channels-last rows; oneDNN's guide conv is faster so too
            x = x.contiguous(memory_format=torch.channels_last)
            if self.factorise(prod(self._out_size(h, w)), torch.is_grad_enabled()):
                gen = self.generator
                y = _in_one_dtype(region_factor_conv, x, gen.hidden(x), gen.factors(),
                                  self.guide(x), *geometry)
            else:
                weight = self.generator(x).reshape(b, self.region_num, self.out_channels, -1)
                y = _in_one_dtype(region_matmul, x, weight, self.guide(x), *geometry)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y

    def _out_size(self, h: int, w: int) -> Tuple[int, int]:
        return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in zip(
            (h, w), self.padding, self.dilation, self.kernel_size, self.stride))

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, padding={self.padding}, dilation={self.dilation}, '
                f'region_num={self.region_num}, impl={self.impl!r}')


def _in_one_dtype(op, x: Tensor, *args):
    """``op(x, *args)`` with ``x`` and the other float tensors before the guide (the last
    tensor) in one dtype: the autocast one when autocast is on, else ``x``'s."""
    device = x.device.type
    *operands, guide = [a for a in args if isinstance(a, Tensor)]
    rest = args[len(operands) + 1:]
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return op(x.to(dtype), *(a.to(dtype) for a in operands), guide, *rest)
    return op(x, *(a.to(x.dtype) for a in operands), guide, *rest)
