"""mmdet's ``CocoMetric`` plus COCO AP per occlusion bucket, in one metric."""
from typing import Dict, List

from mmdet.evaluation import CocoMetric
from mmengine.registry import METRICS

from .occlusion_metric import OcclusionMetric


@METRICS.register_module()
class OcclusionCocoMetric(OcclusionMetric):
    """Drop-in for mmdet's ``CocoMetric`` that also reports AP per occlusion bucket.

    Besides the usual ``coco/bbox_mAP``... keys it returns the ``occlusion/...`` keys of
    :class:`OcclusionMetric` and keeps the full reports in :attr:`reports` for hooks that plot
    them. Every number, the usual COCO keys included, is computed over the images evaluated (those
    of the results gathered from all ranks), not over every image of the annotation file as
    ``CocoMetric`` does. With ``format_only=True`` it only writes the results files, as
    ``CocoMetric``, and returns ``{}``.

    Args: those of :class:`OcclusionMetric` (``bins``, ``overlap``, ``cumulative``, ``backend``)
    and of ``CocoMetric``.
    """

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's keys (prefixed ``coco/`` by ``evaluate``); the reports as
        :class:`OcclusionMetric` computes them."""
        self.reports = {}
        if self.format_only:  # as CocoMetric: write the results files, evaluate nothing
            return CocoMetric.compute_metrics(self, results)
        gts, preds = zip(*results)
        img_ids = self._evaluated_img_ids(gts, preds)
        metrics = self._coco_metrics(results, img_ids)
        self.reports = self._reports(gts, preds, img_ids)
        return metrics

    def _coco_metrics(self, results: list, img_ids: List[int]) -> Dict[str, float]:
        """CocoMetric's own keys over the evaluated images (CocoMetric takes every image of
        the annotation file, counting the objects of images it never saw as misses)."""
        every_img_id, self.img_ids = self.img_ids, img_ids
        try:
            return CocoMetric.compute_metrics(self, results)
        finally:
            self.img_ids = every_img_id
