"""SK-FPN: an FPN whose 3x3 output convs are Selective Kernel convolutions.

Papers: "Selective Kernel Networks", Li et al., CVPR 2019 (Sec. 3.1); "Feature Pyramid Networks
for Object Detection", Lin et al., CVPR 2017.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.necks import FPN
from mmengine.registry import MODELS
from torch import nn

from ..layers.inputs import check_input
from ..layers.sk_attention import SKAttention
from ..layers.sk_conv import SKConv2d


@MODELS.register_module()
class SKFPN(FPN):
    """FPN with SK output convs, so each level selects its receptive field (mmdet and mmseg).

    Every 3x3 conv of mmdet's FPN (the output convs and the extra stride-2 convs) is an
    :class:`SKConv2d` built from ``sk_cfg`` (default: the paper's SK[2, 32, 16], L=32, with BN
    and ReLU in the branches, whatever the neck's own ``norm_cfg``, which still applies to the
    1x1 laterals). The outputs are therefore non-negative, unlike FPN's.

    With ``sk_fusion=True`` the top-down fusion also uses SK's Fuse and Select: the lateral
    ``L_i`` and the upsampled coarser level ``P_{i+1}`` are the two branches of an
    :class:`SKAttention` (Eq. 1-5), and ``P_i = a L_i + b up(P_{i+1})`` with ``a + b = 1`` per
    channel (Eq. 6), instead of FPN's ``L_i + up(P_{i+1})``.

    Args:
        in_channels, out_channels, num_outs, **kwargs: as mmdet's ``FPN``.
        sk_cfg: keyword arguments of :class:`SKConv2d` (``num_branches``, ``groups``,
            ``reduction``, ``min_dim``, ``norm_cfg``, ``act_cfg``) for the output convs; the
            fusion attention takes its ``reduction``, ``min_dim``, ``norm_cfg`` and ``act_cfg``.
        sk_fusion: SK selection instead of the sum in the top-down path.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 sk_cfg: Optional[dict] = None,
                 sk_fusion: bool = False,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, num_outs, **kwargs)
        sk_cfg = dict(sk_cfg or {})
        sk_cfg.setdefault('conv_cfg', kwargs.get('conv_cfg'))
        for i, conv in enumerate(self.fpn_convs):
            self.fpn_convs[i] = SKConv2d(conv.in_channels, out_channels, stride=conv.stride[0],
                                         **sk_cfg)
        self.sk_fusion = sk_fusion
        if sk_fusion:
            attn_args = {k: sk_cfg[k] for k in ('reduction', 'min_dim', 'norm_cfg', 'act_cfg')
                         if k in sk_cfg}
            self.fusions = nn.ModuleList([
                SKAttention(out_channels, 2, **attn_args)
                for _ in range(self.backbone_end_level - self.start_level - 1)
            ])

    def forward(self, inputs: Tuple[torch.Tensor]) -> tuple:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'SKFPN expects {len(self.in_channels)} inputs, got {len(inputs)}')
        for i, (x, channels) in enumerate(zip(inputs, self.in_channels)):
            check_input(f'SKFPN (input {i})', x, channels, f'in_channels[{i}]')
        if not self.sk_fusion:
            return super().forward(inputs)  # mmdet's FPN, through the SK output convs
        return self._forward_sk_fusion(inputs)

    def _forward_sk_fusion(self, inputs: Tuple[torch.Tensor]) -> tuple:
        """mmdet's ``FPN.forward`` with SK selection in place of the top-down sum. mmdet's FPN
        builds its top-down path inline, so the levels after it are built here as there."""
        laterals = [conv(inputs[i + self.start_level])
                    for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 2, -1, -1):
            if 'scale_factor' in self.upsample_cfg:
                up = F.interpolate(laterals[i + 1], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i + 1], size=laterals[i].shape[2:],
                                   **self.upsample_cfg)
            laterals[i] = self.fusions[i]([laterals[i], up])
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)]
        # extra levels: max-pooling, or stride-2 (SK) convs on the chosen source
        if not self.add_extra_convs:
            while len(outs) < self.num_outs:
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        elif len(outs) < self.num_outs:
            source = dict(on_input=inputs[self.backbone_end_level - 1], on_lateral=laterals[-1],
                          on_output=outs[-1])[self.add_extra_convs]
            outs.append(self.fpn_convs[len(outs)](source))
            while len(outs) < self.num_outs:
                x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                outs.append(self.fpn_convs[len(outs)](x))
        return tuple(outs)
