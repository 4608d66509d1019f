"""Adds COCO AP per occlusion bucket to any config whose evaluator is mmdet's ``CocoMetric``."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.fileio import dump
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..metrics.occlusion_coco_metric import OcclusionCocoMetric
from ..occlusion import DEFAULT_BINS


def _predicts_masks(detector) -> bool:
    """mmdet's ``with_mask`` (two-stage detectors, instance segmentors), or a head module named
    like a mask predictor (RTMDet-Ins' ``bbox_head.mask_head``, Mask2Former's ``mask_embed``)."""
    return detector.with_mask or any(
        'mask' in name for name, _ in detector.named_modules()
        if name.split('.')[0] not in ('backbone', 'neck', 'data_preprocessor'))


@HOOKS.register_module()
class OcclusionEvalHook(Hook):
    """Per-bucket COCO AP after each val/test epoch: logged, sent to the visualizer, plotted.

    Add it with ``custom_hooks=[dict(type='OcclusionEvalHook')]``. During the val/test iterations
    it collects the predictions (on every rank); after the epoch it gathers them, computes AP per
    occlusion bucket with :class:`OcclusionCocoMetric` (ground truth and categories taken from
    the evaluator's ``CocoMetric``), logs a table, adds ``occlusion/...`` scalars to the epoch's
    metrics (so the logger and every visualizer backend get them) and writes
    ``{work_dir}/occlusion/{mode}_{step}.png`` and ``.json``. If the evaluator already is an
    :class:`OcclusionCocoMetric`, its reports are reused and nothing is evaluated twice. Only the
    images evaluated count; with ``format_only=True`` in the evaluator it does nothing.

    Before training, validation or testing starts it checks that a model without a mask head
    is not asked for ``'segm'`` (by a metric of the evaluator or by ``iou_types``), which would
    fail only after a whole epoch.

    Args:
        bins, overlap, cumulative, backend: as in :class:`OcclusionCocoMetric`.
        iou_types: ``'bbox'``/``'segm'`` to evaluate; default: those of the evaluator's metric.
        plot: write the PNG plot.
    """

    priority = 'NORMAL'  # after RuntimeInfoHook, before LoggerHook (which logs our scalars)

    def __init__(self,
                 bins: Sequence[float] = DEFAULT_BINS,
                 overlap: str = 'box',
                 cumulative: bool = False,
                 backend: str = 'pycocotools',
                 iou_types: Optional[Sequence[str]] = None,
                 plot: bool = True) -> None:
        self.metric_args = dict(bins=bins, overlap=overlap, cumulative=cumulative,
                                backend=backend)
        OcclusionCocoMetric(**self.metric_args)  # fail on bad arguments when the config is built
        self.iou_types = None if iou_types is None else list(iou_types)
        self.plot = plot
        self._metrics = {}
        self._checked = set()

    def _check_mask_head(self, runner, mode: str) -> None:
        """Refuse 'segm' for a model without a mask head now, not after the first epoch."""
        loop = runner.val_loop if mode == 'val' else runner.test_loop
        if loop is None or mode in self._checked:
            return
        self._checked.add(mode)
        model = runner.model
        while not hasattr(model, 'with_mask') and hasattr(model, 'module'):
            model = model.module  # DDP and test-time augmentation wrap the detector
        if not hasattr(model, 'with_mask') or _predicts_masks(model):
            return
        asking = [f'{type(m).__name__}(metric={m.metrics})' for m in loop.evaluator.metrics
                  if 'segm' in (getattr(m, 'metrics', None) or ())]
        if asking:
            raise ValueError(
                f"{mode}_evaluator.metric asks for 'segm' ({', '.join(asking)}), but the model "
                f"{type(model).__name__} has no mask head: use metric='bbox'")
        if 'segm' in (self.iou_types or ()):
            raise ValueError(f"OcclusionEvalHook: iou_types asks for 'segm', but the model "
                             f'{type(model).__name__} has no mask head')

    def _metric(self, runner, mode: str) -> Optional[OcclusionCocoMetric]:
        """The metric that computes the reports of ``mode``; None if the evaluator only formats
        results (``format_only=True``)."""
        if mode in self._metrics:
            return self._metrics[mode]
        loop = runner.val_loop if mode == 'val' else runner.test_loop
        coco = [m for m in loop.evaluator.metrics if hasattr(m, '_coco_api')]
        if not coco:
            raise TypeError(f'OcclusionEvalHook needs a CocoMetric in the {mode} evaluator, got '
                            f'{[type(m).__name__ for m in loop.evaluator.metrics]}')
        if isinstance(coco[0], OcclusionCocoMetric):
            metric = coco[0]
        elif coco[0].format_only:
            metric = None
        else:
            iou_types = self.iou_types or [t for t in coco[0].metrics if t in ('bbox', 'segm')]
            metric = OcclusionCocoMetric(metric=iou_types, occlusion_only=True,
                                         proposal_nums=coco[0].proposal_nums,
                                         iou_thrs=coco[0].iou_thrs, **self.metric_args)
            metric._coco_api = coco[0]._coco_api
            metric.dataset_meta = loop.dataloader.dataset.metainfo
        self._metrics[mode] = metric
        return metric

    def _process(self, runner, mode, data_batch, outputs):
        metric = self._metric(runner, mode)
        if metric is None or not metric.occlusion_only:
            return  # nothing to evaluate, or the evaluator's own metric processes the batch
        metric.process(data_batch, [o.to_dict() for o in outputs])

    def _finish(self, runner, mode: str, metrics: Optional[dict]) -> None:
        metric = self._metric(runner, mode)
        if metric is None:
            return
        if metric.occlusion_only:
            loop = runner.val_loop if mode == 'val' else runner.test_loop
            scalars = metric.evaluate(len(loop.dataloader.dataset))  # gathers across ranks
            for key, value in scalars.items():
                runner.message_hub.update_scalar(f'{mode}/{key}', value)
            if metrics is not None:
                metrics.update(scalars)
        if not is_main_process() or not metric.reports:
            return
        out = osp.join(runner.work_dir, 'occlusion', mode)
        if mode == 'val' and not isinstance(runner._train_loop, (dict, type(None))):
            by_epoch = hasattr(runner.train_loop, 'max_epochs')
            out += f'_epoch{runner.epoch}' if by_epoch else f'_iter{runner.iter}'
        dump(metric.reports, out + '.json')
        if self.plot:
            from ...visualization import plot_occlusion_reports
            plot_occlusion_reports(list(metric.reports.values()), out + '.png',
                                   title=f'{runner.experiment_name} ({mode})')
        runner.logger.info(f'occlusion report and plot: {out}.json/.png')

    def before_train(self, runner) -> None:
        self._check_mask_head(runner, 'val')

    def before_val(self, runner) -> None:
        self._check_mask_head(runner, 'val')

    def before_test(self, runner) -> None:
        self._check_mask_head(runner, 'test')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._process(runner, 'val', data_batch, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._process(runner, 'test', data_batch, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, 'test', metrics)
