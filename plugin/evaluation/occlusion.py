"""COCO AP split by how occluded an image is: the one computation of the occlusion report.

:func:`evaluate_by_occlusion` is a pure function from the ground truth, the detections and the
buckets (:func:`plugin.structures.parse_bins`) to a report; the metrics, the hook and
``tools/analysis/occlusion_eval.py`` only feed it and pass its reports on. An image's occlusion
ratio r (:mod:`plugin.structures.occlusion_ratio`) is taken over its non-crowd ground-truth
instances (r = 0 for an image without any): boxes by default, the instance masks with
``overlap='mask'``. Images are grouped into buckets ``lo <= r < hi`` (or ``r >= t`` when
cumulative) and COCO AP is computed per bucket (:mod:`plugin.evaluation.cocoeval_subsets`).
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO

from ..structures.occlusion_ratio import (DEFAULT_BUCKETS, Buckets, OcclusionEvalError,
                                          box_occlusion_ratio, mask_occlusion_ratio)
from .cocoeval_subsets import BACKENDS, subset_stats

AP_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')  # COCOeval.stats[:6]
IOU_TYPES = ('bbox', 'segm')
OVERLAPS = ('box', 'mask')
_CHOICES = dict(iou_type=IOU_TYPES, overlap=OVERLAPS, backend=BACKENDS)


def check_options(owner: Optional[str] = None, **options: str) -> None:
    """Raise if an option (``iou_type``, ``overlap``, ``backend``) is not one of its choices;
    the message starts with ``owner`` if given."""
    for name, value in options.items():
        if value not in _CHOICES[name]:
            raise OcclusionEvalError((f'{owner}: ' if owner else '') +
                                     f'{name} must be one of {_CHOICES[name]}, got {value!r}')


def check_masks(coco: COCO, img_ids: Optional[Sequence[int]], needed_for: str,
                crowd: bool = True, source: str = 'the ground truth') -> None:
    """Raise if an annotation of ``img_ids`` (crowd ones too if ``crowd``) has no mask."""
    for img_id in (coco.getImgIds() if img_ids is None else img_ids):
        for a in coco.imgToAnns.get(img_id, []):
            if 'segmentation' not in a and (crowd or not a.get('iscrowd', 0)):
                raise OcclusionEvalError(
                    f'{source}: annotation {a.get("id")} of image {img_id} has no segmentation '
                    f'(masks are needed for {needed_for})')


def image_occlusion_ratios(coco: COCO, img_ids: Optional[Sequence[int]] = None,
                           overlap: str = 'box') -> Dict[int, tuple]:
    """``{img_id: (r, num_instances)}`` over the non-crowd ground truth of ``coco``."""
    check_options(overlap=overlap)
    img_ids = coco.getImgIds() if img_ids is None else img_ids
    if overlap == 'mask':
        check_masks(coco, img_ids, "overlap='mask'", crowd=False)
    out = {}
    for img_id in img_ids:
        anns = [a for a in coco.imgToAnns.get(img_id, []) if not a.get('iscrowd', 0)]
        if overlap == 'box':
            r = box_occlusion_ratio(np.array([a['bbox'] for a in anns]))
        else:
            r = mask_occlusion_ratio([coco.annToRLE(a) for a in anns])
        out[img_id] = (r, len(anns))
    return out


def evaluate_by_occlusion(coco_gt: COCO,
                          coco_dt: COCO,
                          iou_type: str = 'bbox',
                          buckets: Buckets = DEFAULT_BUCKETS,
                          overlap: str = 'box',
                          img_ids: Optional[Sequence[int]] = None,
                          cat_ids: Optional[Sequence[int]] = None,
                          max_dets: Optional[Sequence[int]] = None,
                          iou_thrs: Optional[Sequence[float]] = None,
                          ratios: Optional[Dict[int, tuple]] = None,
                          backend: str = 'pycocotools') -> dict:
    """COCO AP per occlusion bucket.

    Args:
        coco_gt, coco_dt: the ground truth and :func:`load_results` of the detections.
        iou_type: ``'bbox'`` or ``'segm'``.
        buckets: :func:`plugin.structures.parse_bins` of the bucket edges.
        overlap: ``'box'`` or ``'mask'``: which areas define the occlusion ratio.
        img_ids: the images evaluated (default: every image of ``coco_gt``); the buckets and
            the overall row count only these.
        cat_ids, max_dets, iou_thrs: ``COCOeval.params`` (default: pycocotools').
        ratios: precomputed :func:`image_occlusion_ratios` (they depend on the ground truth only).
        backend: ``'pycocotools'`` or ``'faster-coco-eval'`` (same numbers, if installed).

    Returns:
        ``{'iou_type', 'overlap', 'cumulative', 'buckets': [...], 'overall': {...}}``. Each bucket
        holds ``lo, hi, name, num_images, num_instances`` and AP, AP50, AP75, APs/m/l and the ARs;
        a number is None where the bucket has no ground truth or COCO leaves it undefined.
    """
    check_options(iou_type=iou_type, backend=backend)
    img_ids = sorted(coco_gt.getImgIds() if img_ids is None else img_ids)
    unknown = sorted(set(img_ids) - set(coco_gt.getImgIds()))
    if unknown:
        raise OcclusionEvalError(f'{len(unknown)} evaluated image id(s) are not in the '
                                 f'annotation file, e.g. {unknown[:5]}')
    if iou_type == 'segm':
        check_masks(coco_gt, img_ids, "iou_type='segm'")
    if ratios is None:
        ratios = image_occlusion_ratios(coco_gt, img_ids, overlap)
    m, stats_of = subset_stats(coco_gt, coco_dt, iou_type, img_ids, backend, cat_ids=cat_ids,
                               max_dets=max_dets, iou_thrs=iou_thrs)
    names = AP_NAMES + (f'AR{m[0]}', f'AR{m[1]}', f'AR{m[2]}', 'ARs', 'ARm', 'ARl')

    def entry(ids: List[int]) -> dict:
        num_instances = sum(ratios[i][1] for i in ids)
        stats = stats_of(ids) if num_instances else [None] * len(names)
        return dict(num_images=len(ids), num_instances=num_instances, **dict(zip(names, stats)))

    report_buckets = [
        dict(lo=lo, hi=None if math.isinf(hi) else hi, name=name,
             **entry([i for i in img_ids if lo <= ratios[i][0] < hi]))
        for (lo, hi), name in zip(buckets.ranges, buckets.names)]
    return dict(iou_type=iou_type, overlap=overlap, cumulative=buckets.cumulative,
                buckets=report_buckets, overall=entry(img_ids))


def occlusion_metrics(reports: Dict[str, dict]) -> Dict[str, float]:
    """The metric keys of ``{iou_type: report}``: ``occlusion/{bucket}/num_images`` and
    ``occlusion/{bucket}/{iou_type}_{AP|AP50|AP75|APs|APm|APl}``; an undefined number (a bucket
    without ground truth) is -1, as in COCO's own summary."""
    metrics = {}
    for iou_type, report in reports.items():
        for b in report['buckets']:
            metrics[f"occlusion/{b['name']}/num_images"] = b['num_images']
            for stat in AP_NAMES:
                value = b[stat]
                metrics[f"occlusion/{b['name']}/{iou_type}_{stat}"] = (-1.0 if value is None
                                                                       else value)
    return metrics


def format_report(report: dict, names: Sequence[str] = ('AP', 'AP50', 'AP75')) -> str:
    """A plain-text table of one report: a row per bucket, then the row of all images."""
    def cell(v):
        return '-' if v is None else (f'{v:.3f}' if isinstance(v, float) else str(v))

    header = ['occlusion r', 'images', 'instances'] + [f"{report['iou_type']}_{n}" for n in names]
    rows = [[b['name']] + [cell(b[k]) for k in ('num_images', 'num_instances', *names)]
            for b in report['buckets']]
    o = report['overall']
    rows.append(['all'] + [cell(o[k]) for k in ('num_images', 'num_instances', *names)])
    widths = [max(len(r[k]) for r in [header] + rows) for k in range(len(header))]
    lines = ['  '.join(c.rjust(w) for c, w in zip(r, widths)) for r in [header] + rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)
