"""TiedSE: Squeeze-and-Excitation whose two fully connected layers are TFC layers.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 3/4 (TiedSE). SE (Hu et al., CVPR 2018):
``s = sigmoid(W_2 relu(W_1 GAP(x)))``, ``y = x * s``. TiedSE ties ``W_1`` and ``W_2`` by ``B`` (a
:class:`TiedLinear`): each block of ``C/B`` channels is squeezed to ``max(min_channels, C/B/r)``
units with the shared weights, so the SE parameters shrink by ``B^2`` (64x at ``B=8``:
SE-ResNet-50's 2.53M SE parameters become 0.04M). ``B=1`` is the plain SE block.
"""
import torch
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input
from .tied_block_conv import check_tied_channels
from .tied_linear import TiedLinear


@MODELS.register_module()
class TiedSE(nn.Module):
    """TiedSE attention, usable as an mmdet ResNet plugin (``position='after_conv3'``).

    Args:
        in_channels: channels of the input (mmdet's ResNet passes it to plugins).
        B: number of blocks sharing the fc weights; divides ``in_channels``.
        reduction: ``r``; the squeeze has ``max(min_channels, in_channels // B // r)`` units
            per block.
        min_channels: lower bound of the units per block (2 in the official code).
    """
    _abbr_ = 'tied_se'

    def __init__(self, in_channels: int, B: int = 8, reduction: int = 16,
                 min_channels: int = 2) -> None:
        super().__init__()
        check_tied_channels(type(self).__name__, B, in_channels=in_channels)
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f'TiedSE: reduction must be a positive int, got {reduction!r}')
        self.in_channels = in_channels
        rd_channels = max(min_channels, in_channels // B // reduction) * B
        self.fc1 = TiedLinear(in_channels, rd_channels, B=B)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = TiedLinear(rd_channels, in_channels, B=B)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input('TiedSE', x, self.in_channels)
        s = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3))))))  # [N, C]
        return x * s[:, :, None, None]
