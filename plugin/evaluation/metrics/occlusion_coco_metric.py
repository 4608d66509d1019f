"""mmdet's ``CocoMetric`` plus COCO AP per occlusion bucket (:mod:`plugin.evaluation.occlusion`)."""
import os.path as osp
import tempfile
from typing import Dict, List, Sequence

from mmdet.evaluation import CocoMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger
from mmengine.registry import METRICS

from ..occlusion import (BACKENDS, DEFAULT_BINS, IOU_TYPES, OVERLAPS, bucket_ranges,
                         evaluate_by_occlusion, format_report, image_occlusion_ratios,
                         load_results)

REPORTED = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


@METRICS.register_module()
class OcclusionCocoMetric(CocoMetric):
    """Drop-in for mmdet's ``CocoMetric`` that also reports AP per occlusion bucket.

    Besides the usual ``coco/bbox_mAP``... keys it returns ``occlusion/{bucket}/{iou}_{stat}``
    (e.g. ``occlusion/0.2-0.4/bbox_AP``) and ``occlusion/{bucket}/num_images``. Undefined numbers
    (a bucket without ground truth) are -1, as in COCO's own summary. The full reports of the last
    evaluation are kept in :attr:`reports` for hooks that plot them.

    Every number, the usual COCO keys included, is computed over the images evaluated (those of
    the results gathered from all ranks), not over every image of the annotation file as
    ``CocoMetric`` does. With ``format_only=True`` it only writes the results files, as
    ``CocoMetric``, and returns ``{}``.

    Args:
        bins: bucket edges of the occlusion ratio r, ``lo <= r < hi``.
        overlap: ``'box'`` or ``'mask'`` areas in r.
        cumulative: buckets ``r >= edge`` instead of ``lo <= r < hi``.
        occlusion_only: skip the usual COCO keys (used by ``OcclusionEvalHook``, whose
            evaluator already computes them).
        backend: ``'pycocotools'`` or ``'faster-coco-eval'`` (same numbers, faster) for the
            per-bucket evaluation.
        **kwargs: arguments of ``CocoMetric``.
    """

    def __init__(self,
                 *args,
                 bins: Sequence[float] = DEFAULT_BINS,
                 overlap: str = 'box',
                 cumulative: bool = False,
                 occlusion_only: bool = False,
                 backend: str = 'pycocotools',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if overlap not in OVERLAPS:
            raise ValueError(f'OcclusionCocoMetric: overlap must be one of {OVERLAPS}, '
                             f'got {overlap!r}')
        if backend not in BACKENDS:
            raise ValueError(f'OcclusionCocoMetric: backend must be one of {BACKENDS}, '
                             f'got {backend!r}')
        bucket_ranges(bins, cumulative)  # validates bins
        self.bins = list(bins)
        self.overlap = overlap
        self.cumulative = cumulative
        self.occlusion_only = occlusion_only
        self.backend = backend
        self.reports: Dict[str, dict] = {}
        self._ratios: Dict[int, tuple] = {}  # by image id; they depend on the ground truth only

    def evaluate(self, size: int) -> dict:
        # BaseMetric prefixes every key with 'coco/'; the bucket keys stand on their own.
        metrics = super().evaluate(size)
        head = f'{self.prefix}/occlusion/'
        return {(k[len(self.prefix) + 1:] if k.startswith(head) else k): v
                for k, v in metrics.items()}

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.format_only:  # as CocoMetric: write the results files, evaluate nothing
            return {} if self.occlusion_only else super().compute_metrics(results)
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = osp.join(tmp, 'results')
            if self._coco_api is None:  # no ann_file: ground truth comes with the samples
                from pycocotools.coco import COCO
                self._coco_api = COCO(self.gt_to_coco_json(gt_dicts=gts, outfile_prefix=prefix))
            if self.cat_ids is None:
                self.cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta['classes'])
            img_ids = self._evaluated_img_ids(preds)
            metrics = {} if self.occlusion_only else self._coco_metrics(results, img_ids)
            missing = [i for i in img_ids if i not in self._ratios]
            self._ratios.update(image_occlusion_ratios(self._coco_api, missing, self.overlap))
            result_files = self.results2json(preds, prefix)
            dts = {t: load(result_files[t]) for t in IOU_TYPES if t in result_files}

        self.reports = {}
        for iou_type in (m for m in self.metrics if m in IOU_TYPES):
            if iou_type not in dts:
                raise KeyError(f'OcclusionCocoMetric: {iou_type} is not in the results')
            if iou_type == 'segm':  # as CocoMetric: mask areas, not box areas, for APs/m/l
                for d in dts[iou_type]:
                    d.pop('bbox', None)
            report = evaluate_by_occlusion(
                self._coco_api, load_results(self._coco_api, dts[iou_type]), iou_type,
                bins=self.bins, cumulative=self.cumulative, overlap=self.overlap,
                img_ids=img_ids, cat_ids=self.cat_ids, max_dets=self.proposal_nums,
                iou_thrs=self.iou_thrs, ratios=self._ratios, backend=self.backend)
            self.reports[iou_type] = report
            logger.info(f'{iou_type} AP by occlusion ratio ({self.overlap} overlap):\n'
                        + format_report(report))
            for b in report['buckets']:
                metrics[f"occlusion/{b['name']}/num_images"] = b['num_images']
                for stat in REPORTED:
                    v = b[stat]
                    metrics[f"occlusion/{b['name']}/{iou_type}_{stat}"] = -1.0 if v is None else v
        return metrics

    def _evaluated_img_ids(self, preds: Sequence[dict]) -> List[int]:
        """The images of the (gathered) results, which must be in the ground truth."""
        img_ids = sorted({int(p['img_id']) for p in preds})
        unknown = sorted(set(img_ids) - set(self._coco_api.get_img_ids()))
        if unknown:
            raise ValueError(f'OcclusionCocoMetric: {len(unknown)} evaluated image id(s) are not '
                             f'in the annotation file, e.g. {unknown[:5]}')
        return img_ids

    def _coco_metrics(self, results: list, img_ids: List[int]) -> Dict[str, float]:
        """CocoMetric's own keys over the evaluated images (CocoMetric takes every image of
        the annotation file, counting the objects of images it never saw as misses)."""
        every_img_id, self.img_ids = self.img_ids, img_ids
        try:
            return super().compute_metrics(results)
        finally:
            self.img_ids = every_img_id
