"""DR-ResNet: ResNet whose 3x3 convolutions in chosen stages are DRConv.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243). ``drconv``/``stage_with_drconv`` follow mmdet's
``dcn``/``stage_with_dcn``.
"""
from typing import Optional, Sequence

from mmcv.cnn import build_conv_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.registry import MODELS
from torch import nn

from .stage_args import check_depth, per_stage, resnet_stage_args
from .zero_init import ZeroInitResidualMixin


def _drconv(drconv: dict, in_channels: int, out_channels: int, stride: int, dilation: int,
            padding: int) -> nn.Module:
    return build_conv_layer(dict(type='DRConv', **drconv), in_channels, out_channels, 3,
                            stride=stride, padding=padding, dilation=dilation, bias=False)


class DRBasicBlock(BasicBlock):
    """mmdet's ``BasicBlock`` whose two 3x3 convs are DRConv when ``drconv`` is given."""

    def __init__(self, inplanes: int, planes: int, drconv: Optional[dict] = None, **kwargs):
        if kwargs.get('dcn') is not None:
            raise ValueError('DRBasicBlock: dcn is not supported (mmdet\'s BasicBlock has none)')
        super().__init__(inplanes, planes, **kwargs)
        if drconv is not None:
            self.conv1 = _drconv(drconv, inplanes, planes, self.stride, self.dilation,
                                 self.dilation)
            self.conv2 = _drconv(drconv, planes, planes, 1, 1, 1)  # as mmdet's BasicBlock


class DRBottleneck(Bottleneck):
    """mmdet's ``Bottleneck`` whose 3x3 ``conv2`` is DRConv when ``drconv`` is given (keys:
    ``conv2.guide``, ``conv2.generator.{reduce,weight,bias}``; the rest as ResNet's).
    ``dcn`` is refused with ``drconv``: both would be ``conv2``."""

    def __init__(self, inplanes: int, planes: int, drconv: Optional[dict] = None, **kwargs):
        if drconv is not None and kwargs.get('dcn') is not None:
            raise ValueError('DRBottleneck: dcn is not supported with drconv (both would be the '
                             '3x3 conv2)')
        super().__init__(inplanes, planes, **kwargs)
        if drconv is not None:
            self.conv2 = _drconv(drconv, planes, planes, self.conv2_stride, self.dilation,
                                 self.dilation)


@MODELS.register_module()
class DRResNet(ZeroInitResidualMixin, ResNet):
    """ResNet with DRConv 3x3 convolutions (mmdet ``ResNet`` interface, mmdet and mmseg configs).

    ``dict(type='DRResNet', depth=50)`` puts DRConv (``m = 8``) in the 3x3 convs of stages 2-4,
    the rest is ResNet-50, so ImageNet ResNet weights load for everything but those convs.

    Args:
        depth: 18, 34, 50, 101 or 152.
        drconv: arguments of :class:`~plugin.layers.DRConv2d` (``region_num``, ``gen_channels``,
            ...); ``None`` gives a plain ResNet.
        stage_with_drconv: which stages use it, one bool per stage (default
            ``(False, True, True, True)``, cut to ``num_stages``).
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``frozen_stages``, ``norm_cfg``,
            ``norm_eval``, ``with_cp``, ``plugins``, ``dilations``, ``init_cfg``, ...), except
            ``dcn``, which would compete for the same convs.
    """

    arch_settings = {
        18: (DRBasicBlock, (2, 2, 2, 2)),
        34: (DRBasicBlock, (3, 4, 6, 3)),
        50: (DRBottleneck, (3, 4, 6, 3)),
        101: (DRBottleneck, (3, 4, 23, 3)),
        152: (DRBottleneck, (3, 8, 36, 3))
    }

    def __init__(self,
                 depth: int,
                 drconv: Optional[dict] = dict(region_num=8),
                 stage_with_drconv: Optional[Sequence[bool]] = None,
                 **kwargs) -> None:
        check_depth('DRResNet', depth, self.arch_settings)
        if kwargs.get('dcn') is not None:
            raise ValueError('dcn is not supported by DRResNet: its 3x3 convs are DRConv')
        kwargs = resnet_stage_args('DRResNet', kwargs)
        self.drconv = drconv
        self.stage_with_drconv = per_stage('DRResNet', 'stage_with_drconv', stage_with_drconv,
                                           (False, True, True, True), kwargs['num_stages'])
        super().__init__(depth=depth, **kwargs)

    def make_res_layer(self, **kwargs) -> nn.Module:
        stage = len(self.res_layers)  # ResNet.__init__ appends the stage's name after this call
        with_drconv = self.drconv is not None and self.stage_with_drconv[stage]
        return super().make_res_layer(drconv=self.drconv if with_drconv else None, **kwargs)
