"""Tied Block Convolution (TBC) and Tied Group Convolution (TGC), conv layers ``'TBC'``/``'TGC'``.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 3. The input channels are cut into ``B`` equal
blocks and one thin filter bank ``W' in R^{(c_o/B) x (c_i/B) x k x k}`` is applied to every block:

    X~ = X_1 * W' (+) X_2 * W' (+) ... (+) X_B * W'        ((+): channel concatenation)

so a layer has ``B^2`` times fewer parameters and ``B`` times fewer multiply-adds than the
``c_i -> c_o`` convolution it replaces. TGC ties a ``G``-group convolution as the paper's TGC
equation writes it (``order='group'``): the channels are cut into ``G`` groups first, each group
into ``B`` blocks, and the ``B`` blocks of group ``g`` share group ``g``'s filters ``W'_g``:

    X~ = X_1^1 * W'_1 (+) ... (+) X_1^B * W'_1 (+) ... (+) X_G^1 * W'_G (+) ... (+) X_G^B * W'_G

``order='block'`` cuts ``B`` blocks first and shares one ``G``-group filter bank between them (the
official code's folding): group ``g`` of every block reuses ``W'_g``. Same parameters and
FLOPs; the two differ in which channels share a filter. The blocks are folded into the batch: one
convolution on the input viewed as ``(N * B, c_i / B, H, W)``, no loop and no copy of the weight
(``order='group'`` with ``G, B > 1`` moves the blocks in front of the groups first).
"""
import torch
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input

ORDERS = ('group', 'block')


def check_tied_channels(layer: str, B: int, groups: int = 1, **channels: int) -> None:
    """Raise a ``ValueError`` naming ``layer`` unless every channel count splits into ``B`` blocks
    of ``groups`` groups."""
    if not isinstance(B, int) or isinstance(B, bool) or B < 1:
        raise ValueError(f'{layer}: B must be a positive int, got B={B!r}')
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f'{layer}: groups must be a positive int, got groups={groups!r}')
    for name, value in channels.items():
        if value % (B * groups):
            need = f'B={B}' if groups == 1 else f'B*groups={B}*{groups}'
            raise ValueError(f'{layer}: {name}={value} is not divisible by {need}')


@MODELS.register_module('TGC')
@MODELS.register_module('TBC')
class TiedBlockConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose filters are shared by ``B`` equal blocks of channels (Eq. 3; TGC).

    Takes ``nn.Conv2d``'s arguments plus ``B`` and ``order`` (``'group'``: the paper's TGC, the
    blocks of each group share that group's filters; ``'block'``: the blocks share one group-conv
    filter bank; the same layer when ``groups == 1``). ``in_channels``/``out_channels`` are those
    of the whole layer; ``weight`` has shape ``(out_channels / B, in_channels / (B * groups), k,
    k)``, its rows ``[g * c_o / (G B), (g + 1) * c_o / (G B))`` are ``W'_g``. With ``B=1`` the
    layer is ``nn.Conv2d`` (same parameters, same state-dict keys, same output).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, B: int = 1,
                 padding_mode: str = 'zeros', order: str = 'group') -> None:
        check_tied_channels(type(self).__name__, B, groups, in_channels=in_channels,
                            out_channels=out_channels)
        if order not in ORDERS:
            raise ValueError(f'{type(self).__name__}: order must be one of {ORDERS}, '
                             f'got {order!r}')
        super().__init__(in_channels // B, out_channels // B, kernel_size, stride, padding,
                         dilation, groups, bias, padding_mode)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.B, self.order = B, order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, self.in_channels)
        n, c, h, w = x.shape
        B, G = self.B, self.groups
        group_first = self.order == 'group' and B > 1 and G > 1
        if group_first:  # channels [group][block][c] -> [block][group][c]
            x = x.reshape(n, G, B, c // (G * B), h, w).transpose(1, 2)
        # [N, C, H, W] -> [N * B, C / B, H, W]: block b of sample n becomes sample n * B + b
        out = self._conv_forward(x.reshape(n * B, c // B, h, w), self.weight, self.bias)
        if group_first:  # back to [group][block][c]
            out = out.reshape(n, B, G, self.out_channels // (G * B), *out.shape[-2:])
            out = out.transpose(1, 2)
        return out.reshape(n, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        order = f', order={self.order!r}' if self.groups > 1 else ''
        return f'{super().extra_repr()}, B={self.B}{order}'
