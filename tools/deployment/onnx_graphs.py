"""What ``export_onnx.py`` exports: a model's raw outputs (mmdet's ``tensor`` mode), or a whole
detector with its post-processing in standard ONNX ops (RetinaNet-like one-stage detectors, Faster
and Mask R-CNN).

The end-to-end graphs follow mmdet 3.3's ``predict`` of one image (``rescale=False``: boxes in the
pixels of the input tensor) step by step, with what cannot be exported swapped for what can:
mmcv's compiled ``nms`` and ``RoIAlign`` for torchvision's (ONNX ``NonMaxSuppression`` and
``RoiAlign``), the data-dependent branches for masks, and the box decoding written out (mmdet's
``DeltaXYWHBBoxCoder.decode`` imports the removed ``mmdet.core`` under ONNX export). Mask R-CNN
returns each detection's 28x28 mask probabilities; pasting them into the image (mmdet's
``_do_paste_mask``) and thresholding happen outside the graph, as in mmdeploy.

The scripts beside it import it as ``from onnx_graphs import ...``.
"""
import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, roi_align

from plugin.deployment import OnnxExportError


def unwrap(model: nn.Module) -> nn.Module:
    """The detector or segmentor inside our ``DSCDetector`` / ``DSCSegmentor`` (their allocation
    loss trains only), else ``model``."""
    from plugin.models.dsc_detector import DSCLossWrapper
    return model.wrapped if isinstance(model, DSCLossWrapper) else model


def scope_of(model: nn.Module) -> str:
    """``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``: the codebase a built model belongs to."""
    for cls in type(unwrap(model)).__mro__:
        for scope in ('mmdet', 'mmseg', 'mmpretrain'):
            if cls.__module__.startswith(scope + '.'):
                return scope
    raise OnnxExportError(f'{type(model).__name__} is neither an mmdet detector, an mmseg '
                          'segmentor nor an mmpretrain classifier')


def is_two_stage(model: nn.Module) -> bool:
    from mmdet.models.detectors import TwoStageDetector
    return isinstance(model, TwoStageDetector)


class RawOutputs(nn.Module):
    """``model`` in its codebase's ``tensor`` mode: the raw outputs of backbone, neck and head
    (mmdet: the dense head's scores and box deltas per level; mmseg: the decode head's logits;
    mmpretrain: the head's logits). For a two-stage detector, whose ``tensor`` mode runs the RPN's
    NMS, the graph ends at the RPN head; the RoI heads are in :class:`TwoStageEnd2End`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = unwrap(model)
        self.two_stage = scope_of(model) == 'mmdet' and is_two_stage(self.model)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.two_stage:
            out = self.model.rpn_head(self.model.extract_feat(x))
        else:
            out = self.model(x, None, mode='tensor')
        return tuple(torch.utils._pytree.tree_leaves(out))


def decode_deltas(coder, priors: Tensor, deltas: Tensor, img_hw: Sequence[int]) -> Tensor:
    """``coder.decode(priors, deltas, max_shape=img_hw)`` of mmdet's ``DeltaXYWHBBoxCoder`` for
    (N, 4) boxes, the same operations in the same order, the clip as out-of-place ops."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    if type(coder) is not DeltaXYWHBBoxCoder:
        raise OnnxExportError(f'bbox_coder {type(coder).__name__}: the end-to-end export decodes '
                              'DeltaXYWHBBoxCoder boxes only')
    d = deltas * deltas.new_tensor(coder.stds) + deltas.new_tensor(coder.means)
    pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
    pwh = priors[:, 2:] - priors[:, :2]
    dxy_wh = pwh * d[:, :2]
    max_ratio = abs(math.log(16 / 1000))  # decode's default wh_ratio_clip
    if coder.add_ctr_clamp:
        dxy_wh = dxy_wh.clamp(min=-coder.ctr_clamp, max=coder.ctr_clamp)
        dwh = d[:, 2:].clamp(max=max_ratio)
    else:
        dwh = d[:, 2:].clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if coder.clip_border:
        h, w = img_hw
        boxes = torch.min(boxes.clamp(min=0), boxes.new_tensor([w, h, w, h]))
    return boxes


def nms_kept(boxes: Tensor, scores: Tensor, idxs: Tensor, cfg) -> Tensor:
    """Indices mmcv's ``batched_nms(boxes, scores, idxs, cfg.nms)`` keeps, by score, after the
    ``min_bbox_size`` filter of mmdet's ``_bbox_post_process``, at most ``cfg.max_per_img``."""
    nms = cfg.get('nms', cfg)
    if nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False):
        raise OnnxExportError(f'test_cfg nms={dict(nms)}: the end-to-end export runs plain '
                              "per-class NMS (type='nms') only")
    order = torch.arange(boxes.shape[0], device=boxes.device)
    min_size, max_num = cfg.get('min_bbox_size', -1), cfg.get('max_per_img', -1)
    if min_size >= 0:
        wh = boxes[:, 2:] - boxes[:, :2]
        order = order[(wh > min_size).all(dim=1)]
    keep = order[batched_nms(boxes[order], scores[order], idxs[order], nms['iou_threshold'])]
    return keep[:max_num] if max_num > 0 else keep


def level_priors(head, featmaps: Sequence[Tensor]) -> List[Tensor]:
    return head.prior_generator.grid_priors([f.shape[-2:] for f in featmaps],
                                            dtype=featmaps[0].dtype, device=featmaps[0].device)


def _image_hw(x: Tensor) -> Tuple[int, int]:
    if x.shape[0] != 1:
        raise OnnxExportError(f'the end-to-end graph takes one image, got a batch of {x.shape[0]}')
    return int(x.shape[-2]), int(x.shape[-1])


class DenseEnd2End(nn.Module):
    """A one-stage detector whose anchor head scores with a sigmoid (RetinaNet): image ->
    ``dets`` (N, 5: x1 y1 x2 y2 score), ``labels`` (N) as ``predict`` with the head's test_cfg
    (per level the ``nms_pre`` best (anchor, class) pairs above ``score_thr``, decode, NMS)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        head = detector.bbox_head
        if not getattr(head, 'use_sigmoid_cls', False) or not hasattr(head, 'prior_generator') \
                or type(head).__name__ not in ('RetinaHead', 'AnchorHead', 'RetinaSepBNHead'):
            raise OnnxExportError(f'bbox_head {type(head).__name__}: the end-to-end export '
                                  'handles anchor heads with sigmoid scores (RetinaNet)')
        self.detector = detector

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        img_hw = _image_hw(x)
        head = self.detector.bbox_head
        cfg = head.test_cfg
        cls_scores, bbox_preds = head(self.detector.extract_feat(x))
        nms_pre, score_thr = cfg.get('nms_pre', -1), cfg.get('score_thr', 0)
        boxes, scores, labels = [], [], []
        for cls_score, bbox_pred, priors in zip(cls_scores, bbox_preds,
                                                level_priors(head, cls_scores)):
            num_classes = head.cls_out_channels
            s = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()  # (anchor, class) pairs
            s = torch.where(s > score_thr, s, torch.full_like(s, -1.))
            k = min(nms_pre, s.shape[0]) if nms_pre > 0 else s.shape[0]
            s, pairs = s.topk(k)
            valid = s > score_thr
            s, pairs = s[valid], pairs[valid]
            anchors = torch.div(pairs, num_classes, rounding_mode='floor')
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            boxes.append(decode_deltas(head.bbox_coder, priors[anchors], deltas[anchors], img_hw))
            scores.append(s)
            labels.append(pairs % num_classes)
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        keep = nms_kept(boxes, scores, labels, cfg)
        return torch.cat([boxes[keep], scores[keep, None]], dim=1), labels[keep]


def roi_features(extractor, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
    """mmdet's ``SingleRoIExtractor(feats, rois)``: each RoI pooled from the level of its scale,
    as a sum over levels of torchvision's ``roi_align`` masked to the RoIs of the level."""
    if type(extractor).__name__ != 'SingleRoIExtractor':
        raise OnnxExportError(f'RoI extractor {type(extractor).__name__}: the end-to-end export '
                              'handles SingleRoIExtractor only')
    feats = feats[:len(extractor.featmap_strides)]
    levels = extractor.map_roi_levels(rois, len(feats))
    out = 0
    for i, (feat, layer) in enumerate(zip(feats, extractor.roi_layers)):
        if getattr(layer, 'pool_mode', 'avg') != 'avg':
            raise OnnxExportError(f'RoI layer pool_mode={layer.pool_mode!r}: ONNX RoiAlign of '
                                  "the export averages (pool_mode='avg')")
        pooled = roi_align(feat, rois, layer.output_size, layer.spatial_scale,
                           layer.sampling_ratio, layer.aligned)
        out = out + pooled * (levels == i).to(pooled.dtype)[:, None, None, None]
    return out


def _with_batch_index(boxes: Tensor) -> Tensor:
    return torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)


class TwoStageEnd2End(nn.Module):
    """Faster / Mask R-CNN (an RPN head and a ``StandardRoIHead``): image -> ``dets`` (N, 5),
    ``labels`` (N) and, with a mask head, ``masks`` (N, 28, 28): the probabilities of each
    detection's class in its box, as ``predict`` computes them before pasting."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        roi_head = detector.roi_head
        if type(roi_head).__name__ != 'StandardRoIHead' or type(
                detector.rpn_head).__name__ != 'RPNHead':
            raise OnnxExportError(f'{type(detector.rpn_head).__name__} + '
                                  f'{type(roi_head).__name__}: the end-to-end export handles '
                                  'RPNHead + StandardRoIHead (Faster / Mask R-CNN)')
        if roi_head.bbox_head.reg_class_agnostic or roi_head.bbox_head.custom_cls_channels:
            raise OnnxExportError('bbox_head: the end-to-end export handles per-class box '
                                  'regression and softmax scores only')
        self.detector = detector

    def proposals(self, feats: Sequence[Tensor], img_hw: Tuple[int, int]) -> Tensor:
        """``rpn_head.predict(feats, rescale=False)`` boxes: per level the ``nms_pre`` best
        anchors, decoded, NMS over each level apart, the ``max_per_img`` best."""
        head = self.detector.rpn_head
        cfg = head.test_cfg
        cls_scores, bbox_preds = head(feats)
        boxes, scores, levels = [], [], []
        for level, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_scores, bbox_preds, level_priors(head, cls_scores))):
            s = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()
            deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
            if 0 < cfg.nms_pre < s.shape[0]:
                s, top = s.topk(cfg.nms_pre)
                deltas, priors = deltas[top], priors[top]
            boxes.append(decode_deltas(head.bbox_coder, priors, deltas, img_hw))
            scores.append(s)
            levels.append(torch.full_like(s, level, dtype=torch.long))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        return boxes[nms_kept(boxes, scores, levels, cfg)]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        img_hw = _image_hw(x)
        roi_head = self.detector.roi_head
        cfg, bbox_head = roi_head.test_cfg, roi_head.bbox_head
        feats = self.detector.extract_feat(x)
        rois = _with_batch_index(self.proposals(feats, img_hw))
        cls_score, bbox_pred = bbox_head(roi_features(roi_head.bbox_roi_extractor, feats, rois))
        # bbox_head.predict_by_feat + multiclass_nms: every (RoI, class) pair above score_thr
        scores = cls_score.softmax(dim=-1)[:, :-1]
        num_rois, num_classes = scores.shape
        boxes = decode_deltas(bbox_head.bbox_coder,
                              rois[:, 1:].repeat_interleave(num_classes, dim=0),
                              bbox_pred.reshape(-1, 4), img_hw)
        scores = scores.reshape(-1)
        labels = torch.arange(num_classes, device=x.device).repeat(num_rois)
        valid = scores > cfg.score_thr
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = nms_kept(boxes, scores, labels, dict(nms=cfg.nms, max_per_img=cfg.max_per_img))
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        dets = torch.cat([boxes, scores[:, None]], dim=1)
        if not roi_head.with_mask:
            return dets, labels
        mask_logits = roi_head.mask_head(
            roi_features(roi_head.mask_roi_extractor, feats, _with_batch_index(boxes)))
        size = mask_logits.shape[-2:]
        mine = torch.gather(mask_logits, 1, labels.view(-1, 1, 1, 1).expand(-1, 1, *size))
        return dets, labels, mine[:, 0].sigmoid()


def end2end(model: nn.Module) -> nn.Module:
    """The end-to-end graph of a detector (:class:`DenseEnd2End` or :class:`TwoStageEnd2End`)."""
    if scope_of(model) != 'mmdet':
        raise OnnxExportError(f'--end2end is for mmdet detectors; {type(model).__name__} is an '
                              f'{scope_of(model)} model: its raw outputs are its predictions')
    model = unwrap(model)
    if is_two_stage(model):
        return TwoStageEnd2End(model)
    if hasattr(model, 'bbox_head'):
        return DenseEnd2End(model)
    raise OnnxExportError(f'{type(model).__name__}: the end-to-end export handles one-stage '
                          'detectors with an anchor head and two-stage R-CNNs')


def output_names(graph: nn.Module, count: int) -> List[str]:
    """Names of a graph's outputs: ``dets, labels[, masks]`` end to end, else numbered."""
    if isinstance(graph, (DenseEnd2End, TwoStageEnd2End)):
        return ['dets', 'labels', 'masks'][:count]
    return [f'output{i}' for i in range(count)]
