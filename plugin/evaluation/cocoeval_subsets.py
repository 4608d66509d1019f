"""COCO stats of several subsets of the images of one evaluation (the COCOeval adapter).

``COCOeval.evaluate`` runs once over all images; each subset then accumulates the per-image
results of its own images, which gives exactly the numbers of a fresh ``COCOeval`` with
``params.imgIds`` set to that subset (evaluating one image never looks at another).
"""
import contextlib
import copy
import io
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..structures.occlusion_ratio import OcclusionEvalError

BACKENDS = ('pycocotools', 'faster-coco-eval')
StatsOf = Callable[[Sequence[int]], List[Optional[float]]]


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


def subset_stats(coco_gt: COCO, coco_dt: COCO, iou_type: str, img_ids: Sequence[int],
                 backend: str = 'pycocotools', cat_ids: Optional[Sequence[int]] = None,
                 max_dets: Optional[Sequence[int]] = None,
                 iou_thrs: Optional[Sequence[float]] = None) -> Tuple[List[int], StatsOf]:
    """``(maxDets, stats_of)``: ``stats_of(ids)`` is ``COCOeval.stats[:12]`` over the images
    ``ids`` (a subset of ``img_ids``), None where COCO leaves a number undefined.

    ``cat_ids``, ``max_dets``, ``iou_thrs`` are ``COCOeval.params`` (default: pycocotools');
    ``backend`` is one of :data:`BACKENDS`: ``'faster-coco-eval'`` gives the same numbers with
    that package's C++ evaluation.
    """
    evaluate = dict(zip(BACKENDS, (_pycocotools_stats, _faster_coco_eval_stats)))[backend]
    return evaluate(coco_gt, coco_dt, iou_type, img_ids, cat_ids=cat_ids, max_dets=max_dets,
                    iou_thrs=iou_thrs)
