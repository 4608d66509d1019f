"""SKNet: ResNeXt whose grouped 3x3 convs are Selective Kernel convolutions.

Paper: "Selective Kernel Networks", Li et al., CVPR 2019 (https://arxiv.org/abs/1903.06586),
Table 1 (SKNet-50: ResNeXt-50 (32x4d) with SK[M=2, G=32, r=16] in every bottleneck).
"""
from mmdet.models.backbones.resnext import Bottleneck as ResNeXtBottleneck
from mmdet.models.backbones.resnext import ResNeXt
from mmengine.registry import MODELS
from torch import nn

from ..layers.sk_conv import SKConv2d
from .stage_args import check_depth, resnet_stage_args
from .zero_init import ZeroInitResidualMixin


class SKBottleneck(ResNeXtBottleneck):
    """1x1 conv - SK conv - 1x1 conv (SKNet Table 1), with mmdet's ResNeXt bottleneck interface.

    ``conv2`` is an :class:`SKConv2d` (stride, dilation and groups of the ResNeXt 3x3). The SK
    unit ends in its own per-branch BN and ReLU, so ``norm2`` is an identity, and the inherited
    forward's ReLU after it is the identity too (SK's output is non-negative). Checkpoint keys
    follow mmdet's: ``conv1``/``bn1``, ``conv2.branches.{m}``, ``conv2.attn``, ``conv3``/``bn3``.
    """

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 groups: int = 32,
                 base_width: int = 4,
                 base_channels: int = 64,
                 num_branches: int = 2,
                 reduction: int = 16,
                 min_dim: int = 32,
                 **kwargs) -> None:
        if kwargs.get('dcn') is not None:
            raise ValueError('SKBottleneck: dcn is not supported (conv2 is an SK convolution)')
        super().__init__(inplanes, planes, groups=groups, base_width=base_width,
                         base_channels=base_channels, **kwargs)
        width = self.conv2.out_channels
        self.conv2 = SKConv2d(width, width, stride=self.conv2_stride, num_branches=num_branches,
                              groups=groups, reduction=reduction, min_dim=min_dim,
                              dilation=self.dilation, conv_cfg=self.conv_cfg,
                              norm_cfg=self.norm_cfg)
        self.add_module(self.norm2_name, nn.Identity())


@MODELS.register_module()
class SKNet(ZeroInitResidualMixin, ResNeXt):
    """SKNet-50/101 with mmdet ResNet's interface (mmdet and mmseg configs).

    ``dict(type='SKNet', depth=50)`` is the paper's SKNet-50: ResNeXt-50 32x4d whose 3x3 convs
    are SK[2, 32, 16] with L=32 (27.5M parameters, 4.47 GFLOPs at 224x224 with the 1000-class fc).
    The stride-2 of a stage is on the SK conv (``style='pytorch'``). ``depth=14`` (one block
    per stage, as TiedResNet's ``depth=14``) is a light variant for small data and CPU studies.

    Args:
        depth: 14, 50 or 101.
        groups, base_width: ResNeXt's cardinality and width per group (32, 4).
        num_branches, reduction, min_dim: SK's ``M``, ``r`` and ``L``.
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``frozen_stages``, ``norm_cfg``,
            ``norm_eval``, ``with_cp``, ``plugins``, ``dilations``, ``init_cfg``, ...), except
            ``dcn``: the 3x3 convs are SK convs.
    """

    arch_settings = {
        14: (SKBottleneck, (1, 1, 1, 1)),
        50: (SKBottleneck, (3, 4, 6, 3)),
        101: (SKBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self,
                 depth: int,
                 groups: int = 32,
                 base_width: int = 4,
                 num_branches: int = 2,
                 reduction: int = 16,
                 min_dim: int = 32,
                 **kwargs) -> None:
        check_depth('SKNet', depth, self.arch_settings)
        if kwargs.get('dcn') is not None:
            raise ValueError('dcn is not supported by SKNet: its 3x3 convs are SK convolutions')
        kwargs = resnet_stage_args('SKNet', kwargs)
        self.num_branches = num_branches
        self.reduction = reduction
        self.min_dim = min_dim
        super().__init__(depth=depth, groups=groups, base_width=base_width, **kwargs)

    def make_res_layer(self, **kwargs) -> nn.Module:
        return super().make_res_layer(num_branches=self.num_branches, reduction=self.reduction,
                                      min_dim=self.min_dim, **kwargs)
