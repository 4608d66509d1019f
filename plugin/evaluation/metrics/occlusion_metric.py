"""COCO AP per occlusion bucket as an mmengine metric: :func:`evaluate_by_occlusion` over the
predictions gathered from every rank."""
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Union

from mmdet.evaluation import CocoMetric
from mmengine.dist import broadcast_object_list
from mmengine.fileio import load
from mmengine.logging import MMLogger
from mmengine.registry import METRICS
from pycocotools.coco import COCO

from ...structures.occlusion_ratio import DEFAULT_BINS, Buckets, parse_bins
from ..cocoeval_subsets import load_results
from ..occlusion import (IOU_TYPES, check_options, evaluate_by_occlusion, format_report,
                         image_occlusion_ratios, occlusion_metrics)
from ..results_io import coco_of


@METRICS.register_module()
class OcclusionMetric(CocoMetric):
    """COCO AP per occlusion bucket, beside mmdet's ``CocoMetric``.

    Returns ``occlusion/{bucket}/{iou}_{stat}`` (e.g. ``occlusion/0.2-0.4/bbox_AP``) and
    ``occlusion/{bucket}/num_images``; an undefined number (a bucket without ground truth) is -1,
    as in COCO's own summary. The full reports of the last evaluation are in :attr:`reports` on
    every rank. Every number is over the images evaluated (those of the results gathered from all
    ranks), not over every image of the annotation file. ``OcclusionEvalHook`` puts one beside
    the evaluator's ``CocoMetric``; :class:`OcclusionCocoMetric` returns both kinds of keys.

    It collects the predictions as ``CocoMetric`` does; after the epoch the main process converts
    the gathered ones to COCO results and calls :func:`evaluate_by_occlusion` once per IoU type
    with its own copy of the ground truth (the ``ann_file``, or the ground truth the samples carry
    when there is none, as ``CocoMetric``).

    Args:
        bins: bucket edges of the occlusion ratio r, ``lo <= r < hi``, or the :class:`Buckets`
            :func:`parse_bins` made of them (then ``cumulative`` is theirs).
        overlap: ``'box'`` or ``'mask'`` areas in r.
        cumulative: buckets ``r >= edge`` instead of ``lo <= r < hi``.
        backend: ``'pycocotools'`` or ``'faster-coco-eval'`` (same numbers, faster) for the
            per-bucket evaluation.
        ann_file, **kwargs: arguments of ``CocoMetric``: ``metric`` (the IoU types),
            ``proposal_nums`` (maxDets), ``iou_thrs``, ``backend_args``, ...
    """

    def __init__(self,
                 ann_file: Optional[str] = None,
                 *args,
                 bins: Union[Sequence, Buckets] = DEFAULT_BINS,
                 overlap: str = 'box',
                 cumulative: bool = False,
                 backend: str = 'pycocotools',
                 **kwargs) -> None:
        super().__init__(ann_file, *args, **kwargs)
        check_options(type(self).__name__, overlap=overlap, backend=backend)
        self.buckets = bins if isinstance(bins, Buckets) else parse_bins(bins, cumulative)
        self.ann_file = ann_file
        self.sort_categories = kwargs.get('sort_categories', False)
        self.overlap = overlap
        self.backend = backend
        self.reports: Dict[str, dict] = {}
        self._gt: Optional[COCO] = None
        self._ratios: Dict[int, tuple] = {}  # by image id; they depend on the ground truth only

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Leaves the reports of the gathered ``results`` in :attr:`reports` (main process);
        :meth:`evaluate` turns them into keys outside the ``coco/`` prefix."""
        self.reports = {}
        if not self.format_only:
            gts, preds = zip(*results)
            self.reports = self._reports(gts, preds, self._evaluated_img_ids(gts, preds))
        return {}

    def evaluate(self, size: int) -> dict:
        metrics = super().evaluate(size)  # gathers, computes on the main process
        reports = [self.reports]
        broadcast_object_list(reports)  # every rank returns the same keys, as BaseMetric's
        self.reports = reports[0]
        return {**metrics, **occlusion_metrics(self.reports)}

    def _ground_truth(self, gts: Sequence[dict]) -> COCO:
        """Our own COCO of the ground truth, read once (CocoMetric keeps its own private); on
        first use also ``cat_ids``, those of the dataset's classes, as CocoMetric sets them."""
        if self._gt is None:
            if self.ann_file:
                dataset = load(self.ann_file, file_format='json', backend_args=self.backend_args)
            else:  # as CocoMetric without ann_file: the ground truth the samples carry
                with tempfile.TemporaryDirectory() as tmp:
                    dataset = load(self.gt_to_coco_json(gts, osp.join(tmp, 'gt')))
            if self.sort_categories:  # as CocoMetric: Objects365's categories are out of order
                dataset['categories'] = sorted(dataset['categories'], key=lambda c: c['id'])
            self._gt = coco_of(dataset)
        if self.cat_ids is None:
            self.cat_ids = self._gt.getCatIds(catNms=self.dataset_meta['classes'])
        return self._gt

    def _evaluated_img_ids(self, gts: Sequence[dict], preds: Sequence[dict]) -> List[int]:
        """The images of the (gathered) results, which must be in the ground truth."""
        img_ids = sorted({int(p['img_id']) for p in preds})
        unknown = sorted(set(img_ids) - set(self._ground_truth(gts).getImgIds()))
        if unknown:
            raise ValueError(f'{type(self).__name__}: {len(unknown)} evaluated image id(s) are '
                             f'not in the annotation file, e.g. {unknown[:5]}')
        return img_ids

    def _reports(self, gts: Sequence[dict], preds: Sequence[dict],
                 img_ids: List[int]) -> Dict[str, dict]:
        """``{iou_type: report}`` of the predictions on the images ``img_ids``; logs the tables."""
        coco_gt = self._ground_truth(gts)
        missing = [i for i in img_ids if i not in self._ratios]
        self._ratios.update(image_occlusion_ratios(coco_gt, missing, self.overlap))
        with tempfile.TemporaryDirectory() as tmp:
            result_files = self.results2json(preds, osp.join(tmp, 'results'))
            dts = {t: load(result_files[t]) for t in IOU_TYPES if t in result_files}
        reports = {}
        for iou_type in (m for m in self.metrics if m in IOU_TYPES):
            if iou_type not in dts:
                raise KeyError(f'{type(self).__name__}: {iou_type} is not in the results')
            if iou_type == 'segm':  # as CocoMetric: mask areas, not box areas, for APs/m/l
                for d in dts[iou_type]:
                    d.pop('bbox', None)
            reports[iou_type] = evaluate_by_occlusion(
                coco_gt, load_results(coco_gt, dts[iou_type]), iou_type, self.buckets,
                overlap=self.overlap, img_ids=img_ids, cat_ids=self.cat_ids,
                max_dets=self.proposal_nums, iou_thrs=self.iou_thrs, ratios=self._ratios,
                backend=self.backend)
            MMLogger.get_current_instance().info(
                f'{iou_type} AP by occlusion ratio ({self.overlap} overlap):\n'
                + format_report(reports[iou_type]))
        return reports
