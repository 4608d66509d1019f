"""TiedGCB: the GCNet global context block with its 1x1 transforms tied by B.

Papers: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021); "GCNet: Non-local Networks Meet Squeeze-Excitation
Networks and Beyond", Cao et al. (https://arxiv.org/abs/1904.11492), Eq. 4:

    z_i = x_i + W_v2 ReLU(LN(W_v1 sum_j softmax_j(W_k x_j) x_j))

Context modelling (attention pooling with the ``C -> 1`` conv ``W_k``) and the LayerNorm are
GCNet's; the transform ``W_v1`` (``C -> C*ratio``) and ``W_v2`` (``C*ratio -> C``) are TBC layers
with ``B`` blocks, ``B^2`` times fewer parameters. ``W_v2`` starts at zero, so the block starts as
the identity. ``B=1`` is mmcv's ``ContextBlock`` (same state-dict keys and output).
"""
import torch
from mmengine.model import constant_init, kaiming_init
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input
from .tied_block_conv import TiedBlockConv2d, check_tied_channels


@MODELS.register_module()
class TiedGCB(nn.Module):
    """Global context block with tied transforms, usable as an mmdet ResNet plugin.

    Args:
        in_channels: channels of the input (mmdet's ResNet passes it to plugins).
        ratio: the transform bottleneck has ``int(in_channels * ratio)`` channels.
        B: number of blocks sharing each transform's weights; divides both channel counts.
    """
    _abbr_ = 'tied_gcb'

    def __init__(self, in_channels: int, ratio: float = 1. / 16, B: int = 8) -> None:
        super().__init__()
        planes = int(in_channels * ratio)
        check_tied_channels(type(self).__name__, B, in_channels=in_channels,
                            bottleneck_channels=planes)
        self.in_channels, self.planes, self.B = in_channels, planes, B
        self.conv_mask = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.softmax = nn.Softmax(dim=2)
        self.channel_add_conv = nn.Sequential(
            TiedBlockConv2d(in_channels, planes, 1, B=B), nn.LayerNorm([planes, 1, 1]),
            nn.ReLU(inplace=True), TiedBlockConv2d(planes, in_channels, 1, B=B))
        self.init_weights()

    def init_weights(self) -> None:
        """GCNet's initialisation; mmengine calls it after a parent's ``init_cfg`` (e.g. ResNet's
        Kaiming init of every Conv2d), so the block still starts as the identity."""
        kaiming_init(self.conv_mask, mode='fan_in')
        constant_init(self.channel_add_conv[-1], val=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input('TiedGCB', x, self.in_channels)
        n, c, h, w = x.shape
        mask = self.softmax(self.conv_mask(x).reshape(n, 1, h * w))  # [N, 1, HW]
        context = torch.bmm(x.reshape(n, c, h * w), mask.transpose(1, 2))  # [N, C, 1]
        return x + self.channel_add_conv(context.reshape(n, c, 1, 1))
