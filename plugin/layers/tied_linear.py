"""Tied Fully Connected layer (TFC), registered as ``'TFC'``.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 3: the TBC idea for fully connected layers. The
``c_i`` input features are cut into ``B`` blocks and one ``(c_o/B) x (c_i/B)`` matrix ``W'`` maps
every block: ``y = [W' x_1 + b', ..., W' x_B + b']``, ``B^2`` times fewer parameters than
``nn.Linear(c_i, c_o)``.
"""
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import nn

from .tied_block_conv import check_tied_channels


@MODELS.register_module('TFC')
class TiedLinear(nn.Linear):
    """``nn.Linear`` whose weight is shared by ``B`` equal blocks of features.

    ``in_features``/``out_features`` are those of the whole layer; ``weight`` has shape
    ``(out_features / B, in_features / B)``. Any leading dimensions are kept, as in ``nn.Linear``.
    ``B=1`` is ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 B: int = 1) -> None:
        check_tied_channels(type(self).__name__, B, in_features=in_features,
                            out_features=out_features)
        super().__init__(in_features // B, out_features // B, bias)
        self.in_features, self.out_features, self.B = in_features, out_features, B

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f'TiedLinear: expected an input [..., in_features={self.in_features}]'
                             f', got shape {list(x.shape)}')
        lead = x.shape[:-1]
        out = F.linear(x.reshape(*lead, self.B, self.in_features // self.B), self.weight,
                       self.bias)  # [..., B, c_o/B]
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, B={self.B}'
