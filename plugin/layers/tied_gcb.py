"""TiedGCB: the GCNet global context block with its 1x1 transforms tied by B.

Papers: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021); "GCNet: Non-local Networks Meet Squeeze-Excitation
Networks and Beyond", Cao et al. (https://arxiv.org/abs/1904.11492), Eq. 4:

    z_i = x_i + W_v2 ReLU(LN(W_v1 sum_j softmax_j(W_k x_j) x_j))

mmcv's ``ContextBlock`` with the transform convs ``W_v1`` (``C -> C*ratio``) and ``W_v2``
(``C*ratio -> C``) swapped for TBC layers with ``B`` blocks, ``B^2`` times fewer parameters. Context
modelling, the LayerNorm, the initialisation (``W_v2`` at zero: the block starts as the identity)
and the forward are mmcv's. ``B=1`` is ``ContextBlock`` (same state-dict keys and output).
"""
import torch
from mmcv.cnn import ContextBlock
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input
from .tied_block_conv import TiedBlockConv2d, check_tied_channels


@MODELS.register_module()
class TiedGCB(ContextBlock):
    """Global context block with tied transforms, usable as an mmdet ResNet plugin.

    Args:
        in_channels: channels of the input (mmdet's ResNet passes it to plugins).
        ratio: the transform bottleneck has ``int(in_channels * ratio)`` channels.
        B: number of blocks sharing each transform's weights; divides both channel counts.
        pooling_type, fusion_types: as ``ContextBlock`` (GCNet's ``'att'`` and
            ``('channel_add', )`` by default); every fusion transform is tied.
    """
    _abbr_ = 'tied_gcb'

    def __init__(self, in_channels: int, ratio: float = 1. / 16, B: int = 8,
                 pooling_type: str = 'att', fusion_types: tuple = ('channel_add', )) -> None:
        check_tied_channels(type(self).__name__, B, in_channels=in_channels,
                            bottleneck_channels=int(in_channels * ratio))
        super().__init__(in_channels, ratio, pooling_type, fusion_types)
        self.B = B
        for transform in (self.channel_add_conv, self.channel_mul_conv):
            for i, conv in enumerate(transform or ()):
                if isinstance(conv, nn.Conv2d):
                    transform[i] = TiedBlockConv2d(conv.in_channels, conv.out_channels, 1, B=B)
        self.reset_parameters()

    def init_weights(self) -> None:
        """GCNet's initialisation (``ContextBlock.reset_parameters``); mmengine calls it after a
        parent's ``init_cfg`` (e.g. ResNet's Kaiming init of every Conv2d), so the block still
        starts as the identity."""
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input('TiedGCB', x, self.in_channels)
        return super().forward(x)
