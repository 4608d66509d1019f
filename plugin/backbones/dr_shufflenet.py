"""ShuffleNetV2 detection backbone with DRConv pointwise convolutions (``drconv=None``: plain).

Papers: "ShuffleNet V2", Ma et al., ECCV 2018 (https://arxiv.org/abs/1807.11164), Table 5 and
Fig. 3; "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243):
DRConv-ShuffleNetV2 replaces the two 1x1 convs of every block's main branch (as the authors' code
does), keeping the depthwise convs and the shortcut branch plain.
"""
from typing import Optional, Sequence

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .unbuilt_layers import UnbuiltLayersMixin


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _check_pointwise(drconv: Optional[dict], conv_cfg: Optional[dict]) -> None:
    if drconv is not None and conv_cfg is not None:
        raise ValueError(f'drconv and conv_cfg={conv_cfg!r} both set the 1x1 convs of the main '
                         'branch: give conv_cfg=None with drconv, or drconv=None')


class ShuffleV2Block(BaseModule):
    """ShuffleNetV2 unit (Fig. 3c/d): stride 1 splits the channels and transforms one half;
    stride 2 transforms both copies of the input. Concatenation, then a channel shuffle."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 drconv: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride!r}')
        half = out_channels // 2
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f'a stride-1 unit keeps the width: in_channels={in_channels}, '
                             f'out_channels={out_channels}')
        _check_pointwise(drconv, conv_cfg)
        self.stride, self.with_cp = stride, with_cp
        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        pointwise = dict(type='DRConv', **drconv) if drconv is not None else conv_cfg

        def depthwise(channels):
            return ConvModule(channels, channels, 3, stride, 1, groups=channels,
                              conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)

        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise(in_channels),
                ConvModule(in_channels, half, 1, conv_cfg=conv_cfg, **common))
        self.branch2 = nn.Sequential(
            ConvModule(in_channels if stride > 1 else half, half, 1, conv_cfg=pointwise,
                       **common),
            depthwise(half),
            ConvModule(half, half, 1, conv_cfg=pointwise, **common))

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x):
            if self.stride > 1:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            else:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            return channel_shuffle(out, 2)

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner_forward, x, use_reentrant=False)
        return _inner_forward(x)


@MODELS.register_module()
class DRShuffleNetV2(UnbuiltLayersMixin, BaseModule):
    """ShuffleNetV2 (0.5x, 1.0x, 1.5x, 2.0x) as a detection backbone, DRConv in its 1x1 convs.

    Layers: ``stem`` (3x3 conv stride 2 and max-pool, stride 4), ``layer1``-``layer3`` (4, 8, 4
    units, strides 8, 16, 32) and ``conv5`` (1x1 conv to 1024 channels, 2048 at 2.0x).
    ``out_indices`` index ``(stem, layer1, layer2, layer3, conv5)`` (layers after the last one
    used are not built); ``frozen_stages=i`` freezes the stem and the first ``i`` stages. With
    ``drconv=None`` it is the plain ShuffleNetV2 (41M / 146M multiply-adds at 224x224 for
    0.5x / 1.0x with the classifier, ShuffleNetV2 Table 5; DRConv paper: 46M at 0.5x).

    Args:
        widen_factor: 0.5, 1.0, 1.5 or 2.0.
        drconv: arguments of :class:`~plugin.layers.DRConv2d` for the main branch's 1x1 convs,
            or ``None``.
        conv_cfg: as mmdet's ``MobileNetV2``, for every conv; ``None`` when ``drconv`` is given
            (both would build the main branch's 1x1 convs: a ``ValueError``).
        out_indices, frozen_stages, norm_cfg, act_cfg, norm_eval, with_cp, init_cfg: as mmdet's
            ``MobileNetV2``.
    """

    arch_settings = {
        0.5: (24, 48, 96, 192, 1024),
        1.0: (24, 116, 232, 464, 1024),
        1.5: (24, 176, 352, 704, 1024),
        2.0: (24, 244, 488, 976, 2048),
    }
    stage_blocks = (4, 8, 4)

    def __init__(self,
                 widen_factor: float = 1.0,
                 drconv: Optional[dict] = dict(region_num=8),
                 out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg)
        if widen_factor not in self.arch_settings:
            raise ValueError(f'widen_factor must be one of {sorted(self.arch_settings)}, got '
                             f'{widen_factor!r}')
        if not out_indices or not set(out_indices) <= set(range(5)):
            raise ValueError(f'out_indices must be a non-empty subset of range(5), got '
                             f'{out_indices!r}')
        if frozen_stages not in range(-1, 5):
            raise ValueError(f'frozen_stages must be in range(-1, 5), got {frozen_stages!r}')
        _check_pointwise(drconv, conv_cfg)
        self.out_indices, self.frozen_stages, self.norm_eval = tuple(out_indices), frozen_stages, \
            norm_eval
        channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = nn.Sequential(ConvModule(3, channels[0], 3, 2, 1, **common),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer_names = ['stem']
        last = max(self.out_indices)  # layers after the last output are not built (DDP)
        for i, num_blocks in enumerate(self.stage_blocks[:last]):
            blocks = [
                ShuffleV2Block(channels[i] if j == 0 else channels[i + 1], channels[i + 1],
                               2 if j == 0 else 1, drconv, with_cp=with_cp, **common)
                for j in range(num_blocks)
            ]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.layer_names.append(f'layer{i + 1}')
        if last == 4:
            self.conv5 = ConvModule(channels[3], channels[4], 1, **common)
            self.layer_names.append('conv5')
        all_layers = [f'layer{i + 1}' for i in range(len(self.stage_blocks))] + ['conv5']
        self.unbuilt = tuple(all_layers[last:])  # skipped in a whole network's checkpoint
        self.out_channels = [channels[i] for i in self.out_indices]
        self._freeze_stages()

    def forward(self, x: Tensor) -> tuple:
        outs = []
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for name in self.layer_names[:self.frozen_stages + 1]:
            layer = getattr(self, name)
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'DRShuffleNetV2':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
