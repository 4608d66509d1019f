"""MobileNetV2 detection backbone with DRConv pointwise convolutions (``drconv=None``: plain).

Papers: "MobileNetV2", Sandler et al., CVPR 2018 (https://arxiv.org/abs/1801.04381);
"Dynamic Region-Aware Convolution", Chen et al., CVPR 2021 (https://arxiv.org/abs/2003.12243):
the expansion and projection 1x1 convs of the inverted residual blocks become DRConv, the
depthwise convs stay plain.
"""
from typing import Optional, Sequence

from mmcv.cnn import build_conv_layer
from mmdet.models.backbones import MobileNetV2
from mmengine.registry import MODELS
from torch import nn

from .unbuilt_layers import UnbuiltLayersMixin


@MODELS.register_module()
class DRMobileNetV2(UnbuiltLayersMixin, MobileNetV2):
    """mmdet's ``MobileNetV2`` whose inverted residuals in ``stage_with_drconv`` use DRConv for
    ``expand_conv.conv`` and ``linear_conv.conv``.

    Layers after the last of ``out_indices`` are not built, so that DDP sees no unused
    parameters (mmdet's class always builds ``conv2``, 1280 channels); their keys in a checkpoint of
    the whole network (an ImageNet classifier's) are skipped on load.

    Args:
        drconv: arguments of :class:`~plugin.layers.DRConv2d`, or ``None`` (plain MobileNetV2).
        stage_with_drconv: one bool per inverted-residual layer (``layer1``-``layer7``).
        **kwargs: mmdet ``MobileNetV2`` arguments (``widen_factor``, ``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``act_cfg``, ``norm_eval``, ``with_cp``,
            ``init_cfg``).
    """

    def __init__(self,
                 drconv: Optional[dict] = dict(region_num=8),
                 stage_with_drconv: Sequence[bool] = (True, ) * 7,
                 **kwargs) -> None:
        if len(stage_with_drconv) != len(self.arch_settings):
            raise ValueError(f'stage_with_drconv needs one bool per layer '
                             f'({len(self.arch_settings)}), got {stage_with_drconv!r}')
        if drconv is not None and any(stage_with_drconv) and kwargs.get('conv_cfg') is not None:
            raise ValueError(f"DRMobileNetV2: drconv and conv_cfg={kwargs['conv_cfg']!r} both set "
                             'the 1x1 convs of the stages in stage_with_drconv: give '
                             'conv_cfg=None with drconv, or drconv=None')
        self.drconv, self.stage_with_drconv = drconv, tuple(stage_with_drconv)
        super().__init__(**kwargs)
        last = max(self.out_indices)
        if self.frozen_stages > last + 1:
            raise ValueError(f'frozen_stages={self.frozen_stages} freezes layers after the last '
                             f'output (out_indices={self.out_indices}), which are not built')
        self.unbuilt = tuple(self.layers[last + 1:])
        for name in self.unbuilt:
            delattr(self, name)
        self.layers = self.layers[:last + 1]

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Module:
        stage = len(self.layers)  # make_layer runs before the new layer's name is appended
        layer = super().make_layer(out_channels, num_blocks, stride, expand_ratio)
        if self.drconv is None or not self.stage_with_drconv[stage]:
            return layer
        for block in layer:
            for unit in (getattr(block, 'expand_conv', None), block.linear_conv):
                if unit is not None:
                    conv = unit.conv
                    unit.conv = build_conv_layer(dict(type='DRConv', **self.drconv),
                                                 conv.in_channels, conv.out_channels, 1,
                                                 bias=conv.bias is not None)
        return layer
