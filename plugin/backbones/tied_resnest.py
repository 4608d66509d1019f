"""TiedResNeSt: mmdet's ResNeSt with Tied Block Convolutions in its bottlenecks.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021), Sec. 4 (TiedResNeSt). The entry 1x1 conv and the
split-attention 3x3 conv (a group conv with ``radix * groups`` groups) of every ResNeSt bottleneck
become TBC/TGC layers with ``B`` blocks; the exit 1x1 conv, the attention fcs, the stem and the
shortcuts stay as in ResNeSt.

The split-attention conv is a TGC in the paper's order (``order='group'``): each of its
``radix * groups`` groups (radix path ``r``, cardinal group ``k``) is cut into ``B`` blocks that
share that group's filters, so every radix path keeps its own filters, as in ResNeSt.
``order='block'`` (the official TBC code's folding) cuts ``B`` blocks first and shares one grouped
filter bank between them: with ``B`` a multiple of the radix (``B = radix = 2``) every radix path
applies the same filters, and the split attention weighs two copies of one conv.
"""
from typing import Sequence, Union

from mmdet.models.backbones.resnest import Bottleneck as ResNeStBottleneck
from mmdet.models.backbones.resnest import ResNeSt
from mmdet.models.layers import ResLayer
from mmengine.registry import MODELS

from ..layers.tied_block_conv import ORDERS, TiedBlockConv2d
from .stage_args import per_stage, resnet_stage_args


class TiedResNeStBottleneck(ResNeStBottleneck):
    """mmdet's ResNeSt ``Bottleneck`` whose ``conv1`` and ``conv2.conv`` are TBC/TGC with ``B``.

    Args:
        tied_B: ``B`` of both tied convs.
        order: ``'group'`` or ``'block'``, how the split-attention TGC ties its groups (see
            :class:`~plugin.layers.TiedBlockConv2d`).
        **kwargs: mmdet ResNeSt ``Bottleneck`` arguments (dcn is not supported).
    """

    def __init__(self, inplanes: int, planes: int, tied_B: int = 2, order: str = 'group',
                 **kwargs) -> None:
        if kwargs.get('dcn') is not None:
            raise ValueError('TiedResNeStBottleneck: dcn is not supported (conv2 is a TGC)')
        super().__init__(inplanes, planes, **kwargs)
        conv1, splat = self.conv1, self.conv2.conv
        self.conv1 = TiedBlockConv2d(conv1.in_channels, conv1.out_channels, 1,
                                     stride=conv1.stride, bias=False, B=tied_B)
        self.conv2.conv = TiedBlockConv2d(splat.in_channels, splat.out_channels, 3,
                                          stride=splat.stride, padding=splat.padding,
                                          dilation=splat.dilation, groups=splat.groups,
                                          bias=False, B=tied_B, order=order)


@MODELS.register_module()
class TiedResNeSt(ResNeSt):
    """TiedResNeSt backbone: mmdet's ``ResNeSt`` (``ResNetV1d`` stem and shortcuts, split
    attention) built from :class:`TiedResNeStBottleneck` blocks.

    Args:
        tied_B: ``B`` of the tied convs, one int for all stages or one per stage.
        order: ``'group'`` (default, the paper's TGC: every radix path keeps its own filters) or
            ``'block'`` (the radix paths share one filter bank when ``B`` is a multiple of the
            radix).
        **kwargs: mmdet ``ResNeSt``/``ResNet`` arguments (depth 50/101/152/200, radix, groups,
            base_width, out_indices, frozen_stages, norm_cfg, norm_eval, plugins, ...).
    """

    arch_settings = {depth: (TiedResNeStBottleneck, stages)
                     for depth, (_, stages) in ResNeSt.arch_settings.items()}

    def __init__(self, tied_B: Union[int, Sequence[int]] = 2, order: str = 'group',
                 **kwargs) -> None:
        if order not in ORDERS:
            raise ValueError(f'TiedResNeSt: order must be one of {ORDERS}, got {order!r}')
        kwargs = resnet_stage_args('TiedResNeSt', kwargs)
        stages = kwargs['num_stages']
        self.tied_B = (tied_B, ) * stages if isinstance(tied_B, int) else per_stage(
            'TiedResNeSt', 'tied_B', tied_B, (2, ) * 4, stages)
        self.order = order
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        """One stage; ``len(self.res_layers)`` is its index while ``ResNet.__init__`` builds it."""
        return super().make_res_layer(tied_B=self.tied_B[len(self.res_layers)], order=self.order,
                                      **kwargs)
