"""TiedGCBNeck: any mmdet/mmseg neck with a TiedGCB on each of its output levels.

Paper: "Tied Block Convolution: Leaner and Better CNNs with Shared Thinner Filters", Wang & Yu,
AAAI 2021 (https://arxiv.org/abs/2009.12021). Every output ``P_l`` of the wrapped neck becomes
``P_l + TiedGCB_l(P_l)`` (global context added per level, :class:`~plugin.layers.TiedGCB`);
each block starts as the identity, so the wrapper starts as the wrapped neck.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule, ModuleList
from mmengine.registry import MODELS

from ..layers.tied_gcb import TiedGCB


@MODELS.register_module()
class TiedGCBNeck(BaseModule):
    """Wrap ``neck`` (built in the current scope, e.g. mmdet's or mmseg's ``FPN``) and add a
    :class:`TiedGCB` to each output.

    Args:
        neck: config of the wrapped neck.
        out_channels: channels of each output level (an int for all levels); by default the
            neck config's ``out_channels``.
        num_outs: number of output levels; by default the neck config's ``num_outs`` or the
            length of its ``in_channels``.
        ratio, B: of every :class:`TiedGCB`.
    """

    def __init__(self, neck: dict, out_channels: Union[int, Sequence[int], None] = None,
                 num_outs: Optional[int] = None, ratio: float = 1. / 16, B: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        out_channels = out_channels if out_channels is not None else neck.get('out_channels')
        if out_channels is None:
            raise ValueError('TiedGCBNeck: out_channels is not in the neck config; pass it')
        if isinstance(out_channels, int):
            num_outs = num_outs or neck.get('num_outs') or len(neck.get('in_channels', ()))
            if not num_outs:
                raise ValueError('TiedGCBNeck: num_outs is not in the neck config; pass it')
            out_channels = [out_channels] * num_outs
        self.neck = MODELS.build(neck)
        self.gcbs = ModuleList(TiedGCB(c, ratio=ratio, B=B) for c in out_channels)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        outs: List[torch.Tensor] = list(self.neck(inputs))
        if len(outs) != len(self.gcbs):
            raise ValueError(f'TiedGCBNeck: the neck gave {len(outs)} levels, '
                             f'built for {len(self.gcbs)}')
        return tuple(gcb(out) for gcb, out in zip(self.gcbs, outs))
