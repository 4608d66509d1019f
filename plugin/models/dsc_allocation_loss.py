"""Resource-allocation loss of Dynamic Stride Convolutions, with user editing.

Paper: 张淑芳 et al., "Dynamic Stride Convolution and Its Inter-Layer Interpretable Method", Acta
Electronica Sinica 2024, 52(10). The abstract announces a loss that improves DSC and lets a user
edit where computation goes; its form is not public. Ours, per DSC layer l with centres x_i in image
pixels (the inter-layer map of :mod:`plugin.models.dsc_tracer`) and plain centres g_i::

    A_l = mean_i T_l(x_i) - mean_i T_l(g_i)                                               (L1)
    C_l = mean over horizontal/vertical neighbours of relu(|x_i - x_j| / S_l - max_gap)^2  (L2)
    loss_dsc_alloc = -loss_weight * mean_l A_l,   loss_dsc_cov = coverage_weight * mean_l C_l

T is the target map (1 on ground-truth boxes or masks, or segmentation boundaries; plus the user's
edits: positive weights attract computation, negative weights repel it); T_l is T smoothed by a
Gaussian of sigma = ``sigma`` * S_l (S_l the layer's stride in image pixels) and read bilinearly at
the centres, so the loss is differentiable in them. A_l is the fraction of sampling density gained
on the target over the plain strided conv (0 at initialisation); C_l keeps neighbouring samples
within ``max_gap`` strides, so no region is left without samples.
"""
import math
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from .dsc_tracer import DSCSampling
from .gaussian_blur import gaussian_blur

TARGETS = ('boxes', 'masks', 'boundary', 'foreground', None)


def _load_map(spec) -> Tensor:
    """A user map: an array / nested list, a ``.npy`` file (raw values) or an image (value/255)."""
    if isinstance(spec, str):
        if spec.endswith('.npy'):
            array = np.load(spec)
        else:
            import mmcv
            array = mmcv.imread(spec, flag='grayscale').astype(np.float32) / 255
    else:
        array = np.asarray(spec, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f'edit map must be 2-D, got shape {array.shape}')
    return torch.as_tensor(array, dtype=torch.float32)


@MODELS.register_module()
class DSCAllocationLoss(nn.Module):
    """Attract DSC sampling to a target map (eq. L1) without leaving holes (eq. L2).

    Args:
        loss_weight: weight of ``loss_dsc_alloc``.
        coverage_weight: weight of ``loss_dsc_cov``.
        max_gap: largest neighbour distance, in strides of the layer, before coverage is penalised.
        target: the ground truth that attracts: ``'boxes'`` / ``'masks'`` (detection),
            ``'boundary'`` (label changes) / ``'foreground'`` (labels outside
            ``background_labels``) (segmentation), or None (edits only).
        sigma: smoothing of the target, in strides of each layer.
        edit: user editing, ``dict(boxes=[[x1, y1, x2, y2, weight], ...], map=...,
            map_weight=1.0)``: boxes in fractions of the image (0..1); ``weight`` > 0 attracts,
            < 0 repels; ``map`` an array, ``.npy`` or image file resized to each image and
            multiplied by ``map_weight``.
        background_labels, ignore_index: for the segmentation targets.
        layers: names (as ``backbone.named_modules()``) of the DSC layers to use; all by default.
    """

    def __init__(self,
                 loss_weight: float = 0.1,
                 coverage_weight: float = 1.0,
                 max_gap: float = 1.5,
                 target: Optional[str] = 'boxes',
                 sigma: float = 1.0,
                 edit: Optional[dict] = None,
                 background_labels: Sequence[int] = (0, ),
                 ignore_index: int = 255,
                 layers: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
        if not max_gap > 1:
            raise ValueError(f'max_gap must be > 1 (the plain grid has gap 1), got {max_gap!r}')
        if not sigma > 0:
            raise ValueError(f'sigma must be > 0, got {sigma!r}')
        edit = dict(edit or {})
        unknown = set(edit) - {'boxes', 'map', 'map_weight'}
        if unknown:
            raise ValueError(f'edit accepts boxes, map and map_weight, got {sorted(unknown)}')
        boxes = torch.as_tensor(edit.get('boxes', []), dtype=torch.float32)
        boxes = boxes.reshape(0, 5) if boxes.numel() == 0 else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 5 or not ((boxes[:, :4] >= 0) &
                                                         (boxes[:, :4] <= 1)).all():
            raise ValueError('edit boxes must be [x1, y1, x2, y2, weight] with coordinates in 0..1')
        if target is None and not len(boxes) and edit.get('map') is None:
            raise ValueError('target=None needs an edit (boxes or map): nothing would attract')
        self.loss_weight = loss_weight
        self.coverage_weight = coverage_weight
        self.max_gap = max_gap
        self.target = target
        self.sigma = sigma
        self.edit_boxes = boxes
        self.edit_map = None if edit.get('map') is None else _load_map(edit['map']) * \
            edit.get('map_weight', 1.0)
        self.background_labels = tuple(background_labels)
        self.ignore_index = ignore_index
        self.layers = None if layers is None else list(layers)

    # ----------------------------------------------------------------------------- target map T
    def build_target(self, data_samples: Sequence, shape: Sequence[int], device) -> Tensor:
        """T (N, H, W) on the batch input of ``shape``: the samples' ground truth plus the edits."""
        h, w = shape
        target = torch.zeros(len(data_samples), h, w, device=device)
        needs = {'boxes': 'gt_instances', 'masks': 'gt_instances', 'boundary': 'gt_sem_seg',
                 'foreground': 'gt_sem_seg'}.get(self.target)
        for t, sample in zip(target, data_samples):
            if needs is not None and needs not in sample:
                raise ValueError(f'target={self.target!r} needs samples with {needs} (boxes / masks'
                                 f" for detection, 'boundary' / 'foreground' for segmentation)")
            if self.target in ('boxes', 'masks'):
                gt = sample.gt_instances
                if self.target == 'masks':
                    if 'masks' not in gt:
                        raise ValueError("target='masks' needs gt masks "
                                         '(LoadAnnotations with_mask=True)')
                    if len(gt):
                        masks = gt.masks.to_tensor(torch.float32, device).amax(0)
                        mh, mw = min(h, masks.shape[0]), min(w, masks.shape[1])
                        t[:mh, :mw] = masks[:mh, :mw]
                else:
                    boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
                    for x1, y1, x2, y2 in boxes.round().long().tolist():
                        t[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 1
            elif self.target in ('boundary', 'foreground'):
                label = sample.gt_sem_seg.data[0].to(device)
                lh, lw = min(h, label.shape[0]), min(w, label.shape[1])
                t[:lh, :lw] = self._seg_target(label[:lh, :lw])
            self._add_edits(t, sample.metainfo.get('img_shape', (h, w)))
        return target

    def _seg_target(self, label: Tensor) -> Tensor:
        valid = label != self.ignore_index
        if self.target == 'foreground':
            background = torch.zeros_like(valid)
            for b in self.background_labels:
                background |= label == b
            return (valid & ~background).float()
        lab = label.float()[None, None]  # a label change among the valid 3x3 neighbours
        up = F.max_pool2d(lab.masked_fill(~valid, -math.inf), 3, 1, 1)
        down = -F.max_pool2d(-lab.masked_fill(~valid, math.inf), 3, 1, 1)
        return ((up > down)[0, 0] & valid).float()

    def _add_edits(self, t: Tensor, img_shape: Sequence[int]) -> None:
        ih, iw = img_shape[:2]
        for x1, y1, x2, y2, weight in self.edit_boxes.tolist():
            t[round(y1 * ih):round(y2 * ih), round(x1 * iw):round(x2 * iw)] += weight
        if self.edit_map is not None:
            m = F.interpolate(self.edit_map[None, None].to(t.device), size=(ih, iw),
                              mode='bilinear', align_corners=False)[0, 0]
            t[:ih, :iw] += m

    # ----------------------------------------------------------------------------- loss
    def _smoothed(self, target: Tensor, stride: float) -> tuple:
        """T_l: T averaged on cells of S_l / 2 pixels, Gaussian of sigma = ``sigma`` * S_l."""
        cell = max(1, int(stride // 2))
        t = target[:, None]
        t = F.avg_pool2d(t, cell, cell, ceil_mode=True) if cell > 1 else t
        return gaussian_blur(t, self.sigma * stride / cell), cell

    @staticmethod
    def _read(t: Tensor, cell: int, points: Tensor) -> Tensor:
        """Bilinear read of the cell map ``t`` (N, 1, h, w) at image pixels ``points``."""
        h, w = t.shape[-2:]
        q = (points - (cell - 1) / 2) / cell  # cell coordinates
        grid = torch.stack([(2 * q[..., 0] + 1) / w - 1, (2 * q[..., 1] + 1) / h - 1], -1)
        return F.grid_sample(t, grid.reshape(t.shape[0], -1, 1, 2), mode='bilinear',
                             padding_mode='border', align_corners=False)

    def forward(self, sampling: List[DSCSampling], target: Tensor) -> dict:
        """``dict(loss_dsc_alloc, loss_dsc_cov)`` for the traced DSC layers and target (N, H, W)."""
        if self.layers is not None:
            missing = set(self.layers) - {s.name for s in sampling}
            if missing:
                raise ValueError(f'layers {sorted(missing)} are not DSC layers of the backbone '
                                 f'({[s.name for s in sampling]})')
            sampling = [s for s in sampling if s.name in self.layers]
        if not sampling:
            raise ValueError('no DSC layer was traced: the backbone has no DynamicStrideConv2d')
        with torch.autocast(target.device.type, enabled=False):
            gains, gaps = [], []
            for s in sampling:
                pos, grid = s.positions.float(), s.grid.float()
                t, cell = self._smoothed(target.float(), s.stride)
                gains.append(self._read(t, cell, pos).mean() -
                             self._read(t, cell, grid).mean().detach())
                gx = (pos[:, :, 1:, 0] - pos[:, :, :-1, 0]) / s.stride
                gy = (pos[:, 1:, :, 1] - pos[:, :-1, :, 1]) / s.stride
                gaps.append(self._gap_penalty(gx) + self._gap_penalty(gy))
            return dict(loss_dsc_alloc=-self.loss_weight * torch.stack(gains).mean(),
                        loss_dsc_cov=self.coverage_weight * torch.stack(gaps).mean())

    def _gap_penalty(self, gaps: Tensor) -> Tensor:
        return F.relu(gaps - self.max_gap).pow(2).mean() if gaps.numel() else gaps.sum()
