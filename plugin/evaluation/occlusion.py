"""COCO AP split by how occluded an image is.

The occlusion ratio of an image is our reading of the TBC paper's "r = total overlap area / total
instance area" (arXiv 2009.12021, Sec. 4.3, "highly occluded instances"; the paper says no more,
docs/occlusion_eval.md lists the other readings)::

    r = sum_{i<j} area(b_i ∩ b_j) / sum_i area(b_i)

over the image's non-crowd ground-truth instances (r = 0 for an image without any): boxes by
default, the instance masks with ``overlap='mask'``; a sum over pairs, so a pixel inside three
boxes counts three times.

Images are grouped into buckets ``lo <= r < hi`` (or ``r >= t`` when cumulative) and COCO AP is
computed per bucket. ``COCOeval.evaluate`` runs once over all images; each bucket then accumulates
the per-image results of its own images, which gives exactly the numbers of a fresh ``COCOeval``
with ``params.imgIds`` set to that bucket (evaluating one image never looks at another).
"""
import contextlib
import copy
import io
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

DEFAULT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, math.inf)
AP_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')  # COCOeval.stats[:6]
IOU_TYPES = ('bbox', 'segm')
OVERLAPS = ('box', 'mask')
BACKENDS = ('pycocotools', 'faster-coco-eval')


class OcclusionEvalError(ValueError):
    """Bad input to the occlusion evaluation; the message is meant for the user as it is."""


def box_occlusion_ratio(boxes: np.ndarray) -> float:
    """Occlusion ratio of one image from its ``(N, 4)`` boxes in COCO ``xywh`` format."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    areas = boxes[:, 2].clip(min=0) * boxes[:, 3].clip(min=0)
    total = areas.sum()
    if len(boxes) < 2 or total <= 0:
        return 0.0
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    iw = (np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])).clip(min=0)
    ih = (np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])).clip(min=0)
    return float(np.triu(iw * ih, k=1).sum() / total)


def mask_occlusion_ratio(rles: Sequence[dict]) -> float:
    """Occlusion ratio of one image from its instance masks as COCO RLEs (one image size)."""
    rles = list(rles)
    if len(rles) < 2:
        return 0.0
    total = float(mask_utils.area(rles).sum())
    if total <= 0:
        return 0.0
    boxes = mask_utils.toBbox(rles)
    inter = 0.0
    for i in range(len(rles)):
        for j in range(i + 1, len(rles)):
            if box_occlusion_ratio(boxes[[i, j]]) > 0:  # masks can only meet where boxes do
                both = mask_utils.merge([rles[i], rles[j]], intersect=True)
                inter += float(mask_utils.area(both))
    return inter / total


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
    if overlap not in OVERLAPS:
        raise OcclusionEvalError(f'overlap must be one of {OVERLAPS}, got {overlap!r}')
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


def bucket_ranges(bins: Sequence[float], cumulative: bool = False) -> List[tuple]:
    """``[(lo, hi), ...]``: consecutive edges, or ``(t, inf)`` for each finite edge if cumulative.

    Edges may be numbers or strings such as ``'inf'`` (configs cannot write ``math.inf``).
    """
    if isinstance(bins, (str, bytes)):  # '05' would iterate into the edges [0, 5]
        raise OcclusionEvalError(f'bins must be a list of edges, got the string {bins!r}')
    try:
        edges = [float(b) for b in bins]
    except (TypeError, ValueError):
        raise OcclusionEvalError(f'bins must be numbers, got {bins!r}') from None
    if any(math.isnan(b) for b in edges):
        raise OcclusionEvalError(f'bins must be numbers, got NaN in {list(bins)}')
    if len(edges) < 2 or edges[0] < 0 or any(b >= c for b, c in zip(edges, edges[1:])):
        raise OcclusionEvalError(
            f'bins must be at least two non-negative, strictly increasing edges, got {list(bins)}')
    if cumulative:
        return [(t, math.inf) for t in edges if math.isfinite(t)]
    return list(zip(edges, edges[1:]))


def bucket_name(lo: float, hi: float, cumulative: bool = False) -> str:
    """Key used in metric names: ``'0.2-0.4'``, ``'0.8-inf'``, or ``'>=0.4'`` if cumulative."""
    return f'>={lo:g}' if cumulative else f'{lo:g}-{hi:g}'


def load_results(coco_gt: COCO, results: List[dict]) -> COCO:
    """``coco_gt.loadRes(results)``, also for an empty list (every AP is then 0).

    loadRes writes ``id``, ``area`` (and ``bbox`` for masks) into each detection: it gets copies.
    """
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes([dict(d) for d in results])
    coco_dt = COCO()
    coco_dt.dataset = dict(images=list(coco_gt.dataset['images']), annotations=[],
                           categories=copy.deepcopy(coco_gt.dataset['categories']))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


class _SubsetEval(COCOeval):
    """An evaluated :class:`COCOeval` restricted to some of its images, ready to accumulate."""

    def __init__(self, full: COCOeval, img_ids: Sequence[int]):
        # Share the evaluated state (read only); COCOeval.__init__ would recompute it.
        self.__dict__.update(full.__dict__)
        img_ids = sorted(img_ids)
        pe = full._paramsEval
        pos = {img_id: n for n, img_id in enumerate(pe.imgIds)}
        num_imgs, num_areas = len(pe.imgIds), len(pe.areaRng)
        num_cats = len(pe.catIds) if pe.useCats else 1
        # COCOeval.evalImgs is laid out as [category][area range][image].
        self.evalImgs = [full.evalImgs[(k * num_areas + a) * num_imgs + pos[i]]
                         for k in range(num_cats) for a in range(num_areas) for i in img_ids]
        self.params = copy.copy(full.params)
        self.params.imgIds = img_ids
        self._paramsEval = copy.copy(pe)
        self._paramsEval.imgIds = img_ids
        self.eval, self.stats = {}, []


def _stats(coco_eval) -> List[Optional[float]]:
    """``stats[:12]`` after accumulate + summarize; COCO's -1 (undefined) becomes None."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.accumulate()
        coco_eval.summarize()
    return [None if v < 0 else round(float(v), 6) for v in coco_eval.stats[:12]]


def _set_params(params, img_ids, cat_ids, max_dets, iou_thrs) -> None:
    params.imgIds = list(img_ids)
    if cat_ids is not None:
        params.catIds = list(cat_ids)
    if max_dets is not None:
        params.maxDets = list(max_dets)
    if iou_thrs is not None:
        params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)


def _pycocotools_stats(coco_gt, coco_dt, iou_type, img_ids, **params):
    """Evaluate every image once; each subset then only accumulates its own images."""
    coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    _set_params(coco_eval.params, img_ids, **params)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
    return coco_eval.params.maxDets, lambda ids: _stats(_SubsetEval(coco_eval, ids))


def _faster_coco_eval_stats(coco_gt, coco_dt, iou_type, img_ids, **params):
    """faster-coco-eval keeps its per-image results in C++: one evaluation per subset."""
    try:
        from faster_coco_eval import COCO as FasterCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError:
        raise OcclusionEvalError('backend faster-coco-eval needs `pip install faster-coco-eval`'
                                 ) from None
    quiet = dict(print_function=lambda *args, **kwargs: None)
    gt = FasterCOCO(coco_gt.dataset, **quiet)
    # the detections as given: without what pycocotools' loadRes added (id, area, mask boxes)
    added = ('id', 'area') + (('bbox',) if iou_type == 'segm' else ())
    dets = [{k: v for k, v in d.items() if k not in added} for d in coco_dt.dataset['annotations']]
    dt = gt.loadRes(dets)

    def stats(ids):
        coco_eval = COCOeval_faster(gt, dt, iou_type, **quiet)
        _set_params(coco_eval.params, sorted(ids), **params)
        coco_eval.evaluate()
        return _stats(coco_eval)

    max_dets = params['max_dets'] or COCOeval(iouType=iou_type).params.maxDets
    return list(max_dets), stats


def evaluate_by_occlusion(coco_gt: COCO,
                          coco_dt: COCO,
                          iou_type: str = 'bbox',
                          bins: Sequence[float] = DEFAULT_BINS,
                          cumulative: bool = False,
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
        bins: bucket edges, ``lo <= r < hi``; ``cumulative=True`` makes the buckets ``r >= edge``.
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
    if iou_type not in IOU_TYPES:
        raise OcclusionEvalError(f'iou_type must be one of {IOU_TYPES}, got {iou_type!r}')
    if backend not in BACKENDS:
        raise OcclusionEvalError(f'backend must be one of {BACKENDS}, got {backend!r}')
    ranges = bucket_ranges(bins, cumulative)
    img_ids = sorted(coco_gt.getImgIds() if img_ids is None else img_ids)
    unknown = sorted(set(img_ids) - set(coco_gt.getImgIds()))
    if unknown:
        raise OcclusionEvalError(f'{len(unknown)} evaluated image id(s) are not in the '
                                 f'annotation file, e.g. {unknown[:5]}')
    if iou_type == 'segm':
        check_masks(coco_gt, img_ids, "iou_type='segm'")
    if ratios is None:
        ratios = image_occlusion_ratios(coco_gt, img_ids, overlap)
    evaluate = _pycocotools_stats if backend == 'pycocotools' else _faster_coco_eval_stats
    m, stats_of = evaluate(coco_gt, coco_dt, iou_type, img_ids, cat_ids=cat_ids,
                           max_dets=max_dets, iou_thrs=iou_thrs)
    names = AP_NAMES + (f'AR{m[0]}', f'AR{m[1]}', f'AR{m[2]}', 'ARs', 'ARm', 'ARl')

    def entry(ids: List[int]) -> dict:
        num_instances = sum(ratios[i][1] for i in ids)
        stats = stats_of(ids) if num_instances else [None] * len(names)
        return dict(num_images=len(ids), num_instances=num_instances, **dict(zip(names, stats)))

    buckets = [dict(lo=lo, hi=None if math.isinf(hi) else hi, name=bucket_name(lo, hi, cumulative),
                    **entry([i for i in img_ids if lo <= ratios[i][0] < hi]))
               for lo, hi in ranges]
    return dict(iou_type=iou_type, overlap=overlap, cumulative=cumulative,
                buckets=buckets, overall=entry(img_ids))


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
