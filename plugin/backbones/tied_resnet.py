"""TiedResNet and TiedResNeXt: ResNet bottlenecks rebuilt with Tied Block Convolutions.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 3-4. A TiedBottleneck (``s`` splits x ``w`` base
width, written ``4s x 32w``) is

    entry  1x1 TBC, B=2:            inplanes -> s * w_i          + BN + ReLU
    splits s x (3x3 TBC/TGC, B):    w_i      -> w_i              (split j sees its own w_i channels)
    mixer  (see TiedSplitConv2d):   s x w_i  -> s * w_i or w_i   + BN + ReLU
    exit   1x1 conv (standard):     mixed    -> 4 * planes       + BN, + shortcut, ReLU

with ``w_i = w * planes / base_channels`` (``w``, ``2w``, ``4w``, ``8w`` over the four
stages). Two readings of the paper are presets: by default ``B = 1, 2, 4, 8`` in stages 1-4 and a
1x1 conv over the concatenated splits (``'concat-conv'``), the reading that meets the most of the
paper's parameter and FLOP counts; ``arch='text'`` is the block as Sec. 4's ablation text writes
it, ``B = 1, 2, 4, 8`` for the four splits of every block and the splits' element-wise sum feeding
the mixer (``'sum-conv'``). docs/tbc.md tabulates every reading. The backbones subclass mmdet's
``ResNet`` and keep its interface (``depth``, ``out_indices``, ``frozen_stages``, ``norm_eval``,
``plugins``, ...).
"""
from typing import Optional, Sequence, Union

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import Bottleneck, ResNet
from mmdet.models.layers import ResLayer
from mmengine.registry import MODELS
from torch import nn

from ..layers.tied_block_conv import TiedBlockConv2d
from .stage_args import check_depth, per_stage, resnet_stage_args
from .zero_init import ZeroInitResidualMixin

IntOrInts = Union[int, Sequence[int]]
MIXERS = ('concat-conv', 'sum-conv', 'concat', 'sum')


class TiedSplitConv2d(nn.Module):
    """The 3x3 stage of a TiedBottleneck: ``splits`` TBC/TGC convs of ``width`` channels each
    (split ``j`` reads channels ``[j * width, (j + 1) * width)``), fused by ``mixer``:

    ``'concat-conv'``: a 1x1 conv over the concatenated splits, ``splits * width`` channels in and
    out; ``'sum-conv'``: a 1x1 conv over their element-wise sum, ``width -> splits * width``;
    ``'concat'``: the concatenation (``splits * width``); ``'sum'``: the sum (``width``).

    ``B`` is one int for every split or one per split. With one ``B`` the splits run as a single
    TGC with ``splits * groups`` groups in the paper's order (groups first, then blocks), which is
    the per-split layer exactly; otherwise as one conv per split.
    """

    def __init__(self, splits: int, width: int, B: IntOrInts = 1, groups: int = 1,
                 stride: int = 1, dilation: int = 1, mixer: str = 'concat-conv') -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f'TiedSplitConv2d: mixer must be one of {MIXERS}, got {mixer!r}')
        Bs = (B, ) * splits if isinstance(B, int) else tuple(B)
        if len(Bs) != splits:
            raise ValueError(f'TiedSplitConv2d: B={B!r} must be an int or {splits} ints (splits)')
        self.splits, self.width, self.B, self.mixer = splits, width, Bs, mixer
        conv = dict(kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        if len(set(Bs)) == 1:
            self.conv = TiedBlockConv2d(splits * width, splits * width, groups=splits * groups,
                                        B=Bs[0], **conv)
        else:
            self.convs = nn.ModuleList(
                TiedBlockConv2d(width, width, groups=groups, B=b, **conv) for b in Bs)
        summed = mixer.startswith('sum')
        if mixer.endswith('-conv'):
            self.mixer_conv = nn.Conv2d(width if summed else splits * width, splits * width, 1,
                                        bias=False)
        self.out_channels = width if mixer == 'sum' else splits * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, 'conv'):
            out = self.conv(x)  # channels [split][width]
            if self.mixer.startswith('sum'):
                n, _, h, w = out.shape
                out = out.reshape(n, self.splits, self.width, h, w).sum(1)
        else:
            outs = [conv(part) for conv, part in zip(self.convs, x.chunk(self.splits, dim=1))]
            out = sum(outs) if self.mixer.startswith('sum') else torch.cat(outs, dim=1)
        return self.mixer_conv(out) if self.mixer.endswith('-conv') else out


class TiedBottleneck(Bottleneck):
    """mmdet's ``Bottleneck`` with a TBC entry, split TBC/TGC 3x3 convs and a mixer.

    Args:
        inplanes, planes: as mmdet's ``Bottleneck`` (output ``planes * 4``).
        splits: ``s``, the number of 3x3 splits.
        base_width: ``w``, channels of one split in the first stage (scaled by
            ``planes / base_channels`` in later stages, as ResNeXt's base width).
        tied_B: ``B`` of the 3x3 splits, an int or one per split.
        entry_B: ``B`` of the entry 1x1 TBC.
        mixer: one of ``MIXERS`` (see :class:`TiedSplitConv2d`).
        groups: groups of each split's TGC (``1``: TBC).
        base_channels: reference for the width scaling (the backbone's ``base_channels``).
        **kwargs: mmdet ``Bottleneck`` arguments (stride, dilation, style, with_cp, conv_cfg,
            norm_cfg, plugins, ...). ``conv_cfg`` applies to the exit conv; dcn is not supported.
    """

    def __init__(self, inplanes: int, planes: int, splits: int = 4, base_width: int = 32,
                 tied_B: IntOrInts = 1, entry_B: int = 2, mixer: str = 'concat-conv',
                 groups: int = 1, base_channels: int = 64, **kwargs) -> None:
        if kwargs.get('dcn') is not None:
            raise ValueError('TiedBottleneck: dcn is not supported (the 3x3 convs are TBC)')
        super().__init__(inplanes, planes, **kwargs)
        width = base_width * planes // base_channels
        self.conv2 = TiedSplitConv2d(splits, width, tied_B, groups, self.conv2_stride,
                                     self.dilation, mixer)
        mid = self.conv2.out_channels
        self.conv1 = TiedBlockConv2d(inplanes, splits * width, 1, stride=self.conv1_stride,
                                     bias=False, B=entry_B)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, splits * width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(self.norm_cfg, mid, postfix=2)
        self.add_module(self.norm1_name, norm1)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(self.conv_cfg, mid, planes * self.expansion, 1, bias=False)
        if self.with_plugins:  # mmdet sized the after_conv1/2 plugins for `planes` channels
            for name in self.after_conv1_plugin_names + self.after_conv2_plugin_names:
                delattr(self, name)
            self.after_conv1_plugin_names = self.make_block_plugins(splits * width,
                                                                    self.after_conv1_plugins)
            self.after_conv2_plugin_names = self.make_block_plugins(mid, self.after_conv2_plugins)


@MODELS.register_module()
class TiedResNet(ZeroInitResidualMixin, ResNet):
    """TiedResNet backbone: mmdet's ``ResNet`` built from :class:`TiedBottleneck` blocks.

    Args:
        depth: 14 (1 block per stage), 26, 50, 101 or 152.
        arch: a preset of ``arch_zoo`` or a dict with ``splits``, ``base_width``, ``groups`` and
            optionally ``tied_B`` and ``mixer`` (the preset's defaults of those arguments).
            ``'base'``: 4s x 32w; ``'S'``: 4s x 18w; ``'text'``: 4s x 32w with ``B = 1, 2, 4, 8``
            per split and the ``'sum-conv'`` mixer (Sec. 4's text); ``'tiny'``: 2s x 8w for
            CPU demos.
        tied_B: ``B`` of the 3x3 splits, one entry per stage (default: the preset's, else
            ``(1, 2, 4, 8)``, cut to ``num_stages``); each an int or one int per split.
        entry_B: ``B`` of every entry 1x1 TBC.
        mixer: one of ``MIXERS`` (default: the preset's, else ``'concat-conv'``; see
            :class:`TiedSplitConv2d`).
        **kwargs: mmdet ``ResNet`` arguments (num_stages, strides, dilations, out_indices, style,
            frozen_stages, conv_cfg, norm_cfg, norm_eval, plugins, with_cp, zero_init_residual,
            base_channels, init_cfg, ...).
    """

    arch_settings = {
        14: (TiedBottleneck, (1, 1, 1, 1)),
        26: (TiedBottleneck, (2, 2, 2, 2)),
        50: (TiedBottleneck, (3, 4, 6, 3)),
        101: (TiedBottleneck, (3, 4, 23, 3)),
        152: (TiedBottleneck, (3, 8, 36, 3)),
    }
    arch_zoo = {
        'base': dict(splits=4, base_width=32, groups=1),
        'S': dict(splits=4, base_width=18, groups=1),
        'text': dict(splits=4, base_width=32, groups=1, tied_B=((1, 2, 4, 8), ) * 4,
                     mixer='sum-conv'),
        'tiny': dict(splits=2, base_width=8, groups=1),
    }

    def __init__(self, depth: int, arch: Union[str, dict] = 'base',
                 tied_B: Optional[Sequence[IntOrInts]] = None, entry_B: int = 2,
                 mixer: Optional[str] = None, **kwargs) -> None:
        name = type(self).__name__
        if isinstance(arch, str):
            if arch not in self.arch_zoo:
                raise ValueError(f'{name}: arch must be one of {sorted(self.arch_zoo)} or a dict, '
                                 f'got {arch!r}')
            arch = self.arch_zoo[arch]
        keys = {'splits', 'base_width', 'groups'}
        if keys - set(arch):
            raise ValueError(f'{name}: arch dict lacks {sorted(keys - set(arch))}')
        if set(arch) - keys - {'tied_B', 'mixer'}:
            raise ValueError(f'{name}: arch dict has unknown keys '
                             f'{sorted(set(arch) - keys - {"tied_B", "mixer"})}')
        arch = dict(arch)
        preset_mixer, default_B = arch.pop('mixer', 'concat-conv'), arch.pop('tied_B', (1, 2, 4, 8))
        mixer = preset_mixer if mixer is None else mixer
        if mixer not in MIXERS:
            raise ValueError(f'{name}: mixer must be one of {MIXERS}, got {mixer!r}')
        check_depth(name, depth, self.arch_settings)
        kwargs = resnet_stage_args(name, kwargs)
        tied_B = per_stage(name, 'tied_B', tied_B, default_B, kwargs['num_stages'])
        self.arch, self.tied_B, self.entry_B, self.mixer = arch, tied_B, entry_B, mixer
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        """One stage; ``len(self.res_layers)`` is its index while ``ResNet.__init__`` builds it."""
        return super().make_res_layer(tied_B=self.tied_B[len(self.res_layers)],
                                      entry_B=self.entry_B, mixer=self.mixer,
                                      base_channels=self.base_channels, **self.arch, **kwargs)


@MODELS.register_module()
class TiedResNeXt(TiedResNet):
    """TiedResNeXt: :class:`TiedResNet` whose 3x3 splits are Tied Group Convolutions.

    Presets: TiedResNet's widths and readings with grouped splits. ``'base'``: 4s x 32w, 8 groups
    per split (32 per stage: ResNeXt-50 32x4d's 32 groups of 4 channels in stage 1);
    ``'S'``: 4s x 18w, 2 groups per split.
    """

    arch_zoo = {
        'base': dict(splits=4, base_width=32, groups=8),
        'S': dict(splits=4, base_width=18, groups=2),
    }
