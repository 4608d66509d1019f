"""Selective Kernel attention: the Fuse and Select operators of an SK convolution.

Paper: "Selective Kernel Networks", Li et al., CVPR 2019 (https://arxiv.org/abs/1903.06586),
Sec. 3.1.
"""
import warnings
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .inputs import check_input

_warned_running_stats = False


def _synced(norm: _BatchNorm) -> bool:
    """Whether ``norm`` computes its batch statistics over more than one process."""
    if not (isinstance(norm, nn.SyncBatchNorm) and dist.is_available()
            and dist.is_initialized()):
        return False
    return dist.get_world_size(norm.process_group or dist.group.WORLD) > 1


def conv_norm_act(module: ConvModule, x: torch.Tensor, layer: str) -> torch.Tensor:
    """``module(x)`` for a ConvModule of order conv, norm, act built by an SK layer, except that
    a training batch norm that would see one value per channel (a batch of one image and a
    ``[1, C, 1, 1]`` map, not synchronised across processes) normalises with its running
    statistics, as in eval mode; its affine parameters still get gradients. Warns once, naming
    ``layer``."""
    norm = module.norm if module.with_norm else None
    if not (isinstance(norm, _BatchNorm) and norm.training and norm.track_running_stats):
        return module(x)
    y = module(x, activate=False, norm=False)
    if y.numel() == y.shape[1] and not _synced(norm):  # N * H * W == 1
        global _warned_running_stats
        if not _warned_running_stats:
            _warned_running_stats = True
            warnings.warn(f'{layer}: one value per channel for its batch norm in training (a '
                          f'batch of one image, norm not synchronised across processes): '
                          f'normalising with the running statistics, as in eval mode. Shown '
                          f'once; every SK layer does the same (docs/sk.md).', stacklevel=3)
        y = F.batch_norm(y, norm.running_mean, norm.running_var, norm.weight, norm.bias, False,
                         0., norm.eps)
    else:
        y = norm(y)
    return module.activate(y) if module.with_activation else y


class SKAttention(BaseModule):
    """Fuse and Select of SKNet (Eq. 1-6): mixes ``M`` branches with per-channel softmax weights.

    Fuse: ``U = sum_m U_m`` (Eq. 1), ``s = GAP(U)`` (Eq. 2), ``z = ReLU(BN(W s))`` with
    ``W`` of shape ``d x C`` (Eq. 3) and ``d = max(C / r, L)`` (Eq. 4).
    Select: ``a_m = softmax_m(A_m z)`` per channel (Eq. 5) and ``V = sum_m a_m U_m`` (Eq. 6).
    The ``M`` matrices ``A_m`` (``C x d``) are the row blocks of one bias-free 1x1 conv
    ``select`` with ``M * C`` outputs, block ``m`` for branch ``m``.

    The BN of Eq. 3 sees one value per channel and image. It follows ``norm_cfg`` (``SyncBN``
    pools the images of every GPU); with a single value per channel in training (one image, not
    synchronised) it normalises with its running statistics (:func:`conv_norm_act`).

    Args:
        channels: ``C``, the channels of every branch.
        num_branches: ``M``.
        reduction: ``r`` of Eq. 4.
        min_dim: ``L`` of Eq. 4.
        norm_cfg, act_cfg: the ``BN`` and ``ReLU`` of Eq. 3.

    Shape: ``M`` tensors ``[B, C, H, W]`` in, ``V`` ``[B, C, H, W]`` out;
    :meth:`weights` gives the ``a_m`` as ``[B, M, C, 1, 1]``, summing to one over ``M``.
    """

    def __init__(self,
                 channels: int,
                 num_branches: int = 2,
                 reduction: int = 16,
                 min_dim: int = 32,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, value in dict(channels=channels, num_branches=num_branches,
                                reduction=reduction, min_dim=min_dim).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        self.channels, self.num_branches = channels, num_branches
        self._name = f'SKAttention(channels={channels}, num_branches={num_branches})'
        self.attn_channels = max(channels // reduction, min_dim)
        self.fuse = ConvModule(channels, self.attn_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.select = nn.Conv2d(self.attn_channels, num_branches * channels, 1, bias=False)

    def weights(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The softmax weights ``a_m`` of Eq. 5, ``[B, M, C, 1, 1]``."""
        if len(feats) != self.num_branches:
            raise ValueError(f'{self._name}: expected num_branches={self.num_branches} inputs, '
                             f'got {len(feats)}')
        for feat in feats:
            check_input(self._name, feat, self.channels, 'channels')
        s = sum(f.mean((2, 3), keepdim=True) for f in feats)  # GAP of the sum (Eq. 1-2)
        logits = self.select(conv_norm_act(self.fuse, s, self._name))  # Eq. 3, A_m z of Eq. 5
        b, c = s.shape[:2]
        return logits.view(b, self.num_branches, c, 1, 1).softmax(dim=1).to(feats[0].dtype)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        weights = self.weights(feats).unbind(dim=1)
        out = feats[0] * weights[0]
        for feat, weight in zip(feats[1:], weights[1:]):  # Eq. 6 without stacking the branches
            # in place, but not in an ONNX export, whose exporter warns of the mutation (not in
            # any trace: the FLOP counter's trace would count the out-of-place op alone)
            add = out.addcmul if torch.onnx.is_in_onnx_export() else out.addcmul_
            out = add(feat, weight)
        return out
