"""DSC-ResNet: mmdet's ResNet whose downsampling convolutions are Dynamic Stride Convolutions.

Paper: 张淑芳 et al., "Dynamic Stride Convolution and Its Inter-Layer Interpretable Method", Acta
Electronica Sinica 2024, 52(10) (abstract only; the placement below is this plugin's design, see
docs/dsc.md). In every stage with ``stage_with_dsc`` and a stride > 1, the strided conv of the first
block (3x3 ``conv2`` in pytorch style, 1x1 ``conv1`` in caffe style, 3x3 ``conv1`` in a BasicBlock)
is a :class:`DynamicStrideConv2d`, and the block's strided 1x1 shortcut samples the SAME centres
(:class:`DSCShortcut`) so the residual sum stays aligned. Optionally the stem's first conv too.
"""
from typing import Optional, Sequence

import torch
from mmcv.cnn import build_conv_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmdet.models.layers import ResLayer
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..layers.dynamic_stride_conv import DynamicStrideConv2d, dsc_conv2d
from .stage_args import check_depth, per_stage, resnet_stage_args
from .zero_init import ZeroInitResidualMixin


class DSCShortcut(nn.Conv2d):
    """The shortcut's 1x1 projection evaluated at its block's DSC centres (``leader``).

    Replaces the strided 1x1 conv of mmdet's ``downsample``; same weight, so the same checkpoint
    key (``downsample.0.weight``). With the leader's offsets at zero it equals that strided conv.
    The leader hands over its differentiable centres through a position hook; this module drops
    them after use, so no graph outlives the block's forward.
    """

    def __init__(self, conv: nn.Conv2d, leader: DynamicStrideConv2d) -> None:
        super().__init__(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None)
        self._positions: Optional[Tensor] = None
        leader.register_position_hook(self._receive)

    def _receive(self, leader: nn.Module, positions: Tensor) -> None:
        self._positions = positions

    def forward(self, x: Tensor) -> Tensor:
        positions, self._positions = self._positions, None
        if positions is None:
            raise RuntimeError('DSCShortcut samples the centres of its block\'s DSC conv: run the '
                               'block, not the shortcut alone')
        return dsc_conv2d(x.contiguous(memory_format=torch.channels_last), self.weight, self.bias,
                          positions)


def _make_dsc(block: nn.Module, conv_name: str, dsc: dict) -> None:
    """Replace ``block.<conv_name>`` (the strided conv) by a DSC and let the shortcut follow it."""
    conv = getattr(block, conv_name)
    layer = build_conv_layer(dsc, conv.in_channels, conv.out_channels, conv.kernel_size,
                             stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                             groups=conv.groups, bias=conv.bias is not None)
    setattr(block, conv_name, layer)
    shortcut = block.downsample
    if shortcut is not None and isinstance(shortcut[0], nn.Conv2d) and shortcut[0].stride != (1, 1):
        shortcut[0] = DSCShortcut(shortcut[0], layer)


class DSCBasicBlock(BasicBlock):
    """mmdet's BasicBlock; with ``dsc`` and stride > 1, ``conv1`` (3x3) is a DSC."""

    def __init__(self, *args, dsc: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if dsc is not None and self.stride > 1:
            _make_dsc(self, 'conv1', dsc)


class DSCBottleneck(Bottleneck):
    """mmdet's Bottleneck; with ``dsc`` and stride > 1, the strided conv is a DSC
    (``conv2`` 3x3 in pytorch style, ``conv1`` 1x1 in caffe style). ``dcn`` (a ``conv2``) is
    refused where the DSC would replace it."""

    def __init__(self, *args, dsc: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if dsc is not None and self.stride > 1:
            if self.with_dcn and self.style == 'pytorch':
                raise ValueError('DSCBottleneck: dcn is not supported with dsc in a strided '
                                 'pytorch-style block (both would be the 3x3 conv2)')
            _make_dsc(self, 'conv2' if self.style == 'pytorch' else 'conv1', dsc)


@MODELS.register_module()
class DSCResNet(ZeroInitResidualMixin, ResNet):
    """ResNet with Dynamic Stride Convolutions, mmdet ResNet's interface (mmdet and mmseg).

    ``dict(type='DSCResNet', depth=50)`` is ResNet-50 whose stride-2 convs of stages 2-4 are DSC;
    it loads a plain ResNet checkpoint (``init_cfg=dict(type='Pretrained', ...)``): the DSC and
    shortcut weights keep their keys, only ``conv_offset`` is new and starts at zero.

    Args:
        depth: 18, 34, 50, 101 or 152.
        dsc: the DSC conv config, ``dict(type='DSC', offset_kernel_size=3, max_displacement=0.5)``.
        stage_with_dsc: per stage, whether its strided conv (stride > 1 only) is a DSC (default
            ``(False, True, True, True)``, cut to ``num_stages``).
        dsc_stem: also the stem's strided conv (7x7, or the first 3x3 with ``deep_stem``).
        **kwargs: mmdet ``ResNet`` arguments (``out_indices``, ``strides``, ``dilations``,
            ``style``, ``deep_stem``, ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``with_cp``,
            ``plugins``, ``dcn``/``stage_with_dcn`` on other stages, ``init_cfg``, ...); not
            ``avg_down``.
    """

    arch_settings = {
        18: (DSCBasicBlock, (2, 2, 2, 2)),
        34: (DSCBasicBlock, (3, 4, 6, 3)),
        50: (DSCBottleneck, (3, 4, 6, 3)),
        101: (DSCBottleneck, (3, 4, 23, 3)),
        152: (DSCBottleneck, (3, 8, 36, 3))
    }

    def __init__(self,
                 depth: int,
                 dsc: dict = dict(type='DSC'),
                 stage_with_dsc: Optional[Sequence[bool]] = None,
                 dsc_stem: bool = False,
                 **kwargs) -> None:
        check_depth('DSCResNet', depth, self.arch_settings)
        if not isinstance(dsc, dict):
            raise ValueError(f'dsc must be a conv config dict such as dict(type="DSC"), '
                             f'got {dsc!r}')
        kwargs = resnet_stage_args('DSCResNet', kwargs)
        stage_with_dsc = per_stage('DSCResNet', 'stage_with_dsc', stage_with_dsc,
                                   (False, True, True, True), kwargs['num_stages'])
        if kwargs.get('avg_down') and any(stage_with_dsc):
            raise ValueError('avg_down=True is not supported with DSC stages: the shortcut must '
                             'sample the DSC centres with a strided 1x1 conv')
        if kwargs.get('dcn') is not None and any(a and b for a, b in zip(
                stage_with_dsc, kwargs['stage_with_dcn'])):
            raise ValueError('stage_with_dcn and stage_with_dsc overlap: a stage has one kind')
        self.dsc = {'type': 'DSC', **dsc}
        self.stage_with_dsc = stage_with_dsc
        self.dsc_stem = dsc_stem
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        if self.dsc_stem:
            parent, name = (self.stem, '0') if self.deep_stem else (self, 'conv1')
            conv = getattr(parent, name)
            setattr(parent, name, build_conv_layer(
                self.dsc, conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                padding=conv.padding, bias=conv.bias is not None))

    def make_res_layer(self, **kwargs) -> ResLayer:
        stage = len(self.res_layers)  # ResNet.__init__ appends the stage's name after this call
        return super().make_res_layer(dsc=self.dsc if self.stage_with_dsc[stage] else None,
                                      **kwargs)
