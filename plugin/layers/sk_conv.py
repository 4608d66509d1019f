"""Selective Kernel convolution (Split, Fuse, Select), registered as conv layer ``'SK'``.

Paper: "Selective Kernel Networks", Li et al., CVPR 2019 (https://arxiv.org/abs/1903.06586),
Sec. 3.1.
"""
from typing import Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

from .inputs import check_input
from .sk_attention import SKAttention, conv_norm_act

IntOrPair = Union[int, Sequence[int]]


class SKConv2d(BaseModule):
    """SK convolution: ``M`` 3x3 branches whose outputs are mixed by per-channel softmax weights.

    Split: branch ``m = 1..M`` is a grouped 3x3 conv with dilation ``m * dilation`` (the paper's
    5x5 as a dilated 3x3), then BN and ReLU, giving ``U_m``. Fuse and Select
    (:class:`SKAttention`, Eq. 1-5) give weights ``a_m`` that sum to one per channel, and
    ``V = sum_m a_m U_m`` (Eq. 6). The output is non-negative (ReLU'd branches, convex weights).
    With ``num_branches=1`` the layer is exactly conv + BN + ReLU (no attention is built).
    A training BN that would see one value per channel (one image, a 1x1 map) normalises with
    its running statistics (:func:`~.sk_attention.conv_norm_act`).

    Args:
        in_channels, out_channels: as ``nn.Conv2d``; both divisible by ``groups``.
        stride: of every branch.
        num_branches: ``M``, the paper's SK[M, G, r].
        groups: ``G``, groups of every branch conv.
        reduction: ``r``; the fuse fc has ``d = max(out_channels // r, min_dim)`` outputs (Eq. 4).
        min_dim: ``L`` of Eq. 4.
        dilation: base dilation; branch ``m`` uses ``m * dilation`` (and as much padding).
        conv_cfg: conv layer of the branches (``None``: ``nn.Conv2d``).
        norm_cfg, act_cfg: the BN and ReLU of the branches and of the fuse fc.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 num_branches: int = 2,
                 groups: int = 32,
                 reduction: int = 16,
                 min_dim: int = 32,
                 dilation: int = 1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, value in dict(in_channels=in_channels, out_channels=out_channels, stride=stride,
                                num_branches=num_branches, groups=groups, reduction=reduction,
                                min_dim=min_dim, dilation=dilation).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'groups={groups} must divide in_channels={in_channels} and '
                             f'out_channels={out_channels}')
        self.branches = nn.ModuleList([
            ConvModule(in_channels, out_channels, 3, stride=stride, padding=m * dilation,
                       dilation=m * dilation, groups=groups, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=act_cfg) for m in range(1, num_branches + 1)
        ])
        self.attn = SKAttention(out_channels, num_branches, reduction, min_dim, norm_cfg,
                                act_cfg) if num_branches > 1 else None
        # the attributes of a conv layer that mmcv's ConvModule reads from what it builds
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = (3, 3), (stride, stride)
        self.padding = self.dilation = (dilation, dilation)
        self.transposed, self.output_padding = False, (0, 0)
        self._name = f'SKConv2d(in_channels={in_channels}, out_channels={out_channels})'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self._name, x, self.in_channels)
        feats = [conv_norm_act(branch, x, self._name) for branch in self.branches]
        return feats[0] if self.attn is None else self.attn(feats)


def _single(value: IntOrPair, name: str) -> int:
    """``3`` from ``3`` or ``(3, 3)``; SK's branches are square."""
    if isinstance(value, int):
        return value
    if len(set(value)) == 1:
        return value[0]
    raise ValueError(f'{name} must be the same along both axes for SK convolution, got {value}')


@MODELS.register_module(name='SK')
def sk_conv_layer(in_channels: int,
                  out_channels: int,
                  kernel_size: IntOrPair = 3,
                  stride: IntOrPair = 1,
                  padding: Optional[IntOrPair] = None,
                  dilation: IntOrPair = 1,
                  groups: int = 32,
                  bias: bool = False,
                  **sk_args) -> SKConv2d:
    """:class:`SKConv2d` from the arguments mmcv's ``build_conv_layer`` passes.

    ``build_conv_layer(dict(type='SK', num_branches=2, reduction=16), in, out, 3, stride=s,
    padding=d, dilation=d, groups=g, bias=False)``: the layer stands in for a 3x3 conv
    *followed by* BN and ReLU, since each branch ends in its own norm and activation.
    """
    if _single(kernel_size, 'kernel_size') != 3:
        raise ValueError(f'kernel_size must be 3 for SK convolution (3x3 branches with dilation '
                         f'1..M), got {kernel_size}')
    dilation = _single(dilation, 'dilation')
    if padding is not None and _single(padding, 'padding') != dilation:
        raise ValueError(f'padding must equal dilation ({dilation}) for SK convolution, whose '
                         f'branches keep the 3x3 "same" padding; got {padding}')
    if bias:
        raise ValueError('bias=True: SK convolution has no conv bias (every branch ends in a '
                         'norm layer); pass bias=False')
    return SKConv2d(in_channels, out_channels, stride=_single(stride, 'stride'),
                    dilation=dilation, groups=groups, **sk_args)
