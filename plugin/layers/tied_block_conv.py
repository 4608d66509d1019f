"""Tied Block Convolution (TBC) and Tied Group Convolution (TGC), conv layers ``'TBC'``/``'TGC'``.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 3. The input channels are cut into ``B`` equal
blocks and one thin filter bank ``W' in R^{(c_o/B) x (c_i/B) x k x k}`` is applied to every block:

    X~ = X_1 * W' (+) X_2 * W' (+) ... (+) X_B * W'        ((+): channel concatenation)

so a layer has ``B^2`` times fewer parameters and ``B`` times fewer multiply-adds than the
``c_i -> c_o`` convolution it replaces. With ``groups > 1`` the shared filter is itself a group
convolution (TGC). The blocks are folded into the batch: one convolution on the input viewed as
``(N * B, c_i / B, H, W)``, no loop and no copy of the weight.
"""
import torch
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input


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
    """``nn.Conv2d`` whose filters are shared by ``B`` equal blocks of channels (Eq. 3).

    Takes ``nn.Conv2d``'s arguments plus ``B``. ``in_channels``/``out_channels`` are those of the
    whole layer; ``weight`` has shape ``(out_channels / B, in_channels / (B * groups), k, k)``. With
    ``B=1`` the layer is ``nn.Conv2d`` (same parameters, same state-dict keys, same output).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, B: int = 1,
                 padding_mode: str = 'zeros') -> None:
        check_tied_channels(type(self).__name__, B, groups, in_channels=in_channels,
                            out_channels=out_channels)
        super().__init__(in_channels // B, out_channels // B, kernel_size, stride, padding,
                         dilation, groups, bias, padding_mode)
        self.in_channels, self.out_channels, self.B = in_channels, out_channels, B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, self.in_channels)
        n, c, h, w = x.shape
        # [N, C, H, W] -> [N * B, C / B, H, W]: block b of sample n becomes sample n * B + b
        out = self._conv_forward(x.reshape(n * self.B, c // self.B, h, w), self.weight, self.bias)
        return out.reshape(n, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, B={self.B}'
