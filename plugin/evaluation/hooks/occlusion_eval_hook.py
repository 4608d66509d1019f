"""Adds COCO AP per occlusion bucket to any config whose evaluator is mmdet's ``CocoMetric``."""
import contextlib
import io
import os.path as osp
from typing import Optional, Sequence

from mmdet.evaluation import CocoMetric
from mmengine.dist import is_main_process
from mmengine.fileio import dump
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...structures.occlusion_ratio import DEFAULT_BINS, parse_bins
from ..metrics.occlusion_metric import OcclusionMetric
from ..occlusion import IOU_TYPES, check_options


def _predicts_masks(detector) -> bool:
    """mmdet's ``with_mask`` (two-stage detectors, instance segmentors), or a head module named
    like a mask predictor (RTMDet-Ins' ``bbox_head.mask_head``, Mask2Former's ``mask_embed``)."""
    return detector.with_mask or any(
        'mask' in name for name, _ in detector.named_modules()
        if name.split('.')[0] not in ('backbone', 'neck', 'data_preprocessor'))


@HOOKS.register_module()
class OcclusionEvalHook(Hook):
    """Per-bucket COCO AP after each val/test epoch: in the evaluator's metrics, and plotted.

    Add it with ``custom_hooks=[dict(type='OcclusionEvalHook')]``. Before validation or testing
    starts it puts an :class:`OcclusionMetric` beside the evaluator's ``CocoMetric`` (as mmdet's
    ``tools/test.py --out`` adds ``DumpDetResults``), with the annotation file of the val/test
    dataset as ground truth and the ``CocoMetric``'s maxDets and IoU thresholds. The evaluator
    then collects, gathers and returns its ``occlusion/...`` keys with its own, so the logger,
    every visualizer backend and ``save_best`` get them. If the evaluator already has an
    :class:`OcclusionMetric` (an :class:`OcclusionCocoMetric`, say), that one is used and the
    hook's own arguments are not. After each epoch the hook writes the metric's reports to
    ``{work_dir}/occlusion/{mode}_{step}.json`` and ``.png``; it computes nothing itself. With
    ``format_only=True`` in the evaluator it does nothing.

    Before training, validation or testing starts it also checks that a model without a mask
    head is not asked for ``'segm'`` (by a metric of the evaluator or by ``iou_types``), which
    would fail only after a whole epoch.

    Args:
        bins, overlap, cumulative, backend: as in :class:`OcclusionMetric`.
        iou_types: ``'bbox'``/``'segm'`` to evaluate; default: those of the ``CocoMetric``.
        plot: write the PNG plot.
    """

    def __init__(self,
                 bins: Sequence = DEFAULT_BINS,
                 overlap: str = 'box',
                 cumulative: bool = False,
                 backend: str = 'pycocotools',
                 iou_types: Optional[Sequence[str]] = None,
                 plot: bool = True) -> None:
        # fail on bad arguments when the config is built, not when validation starts
        check_options(type(self).__name__, overlap=overlap, backend=backend)
        self.metric_args = dict(bins=parse_bins(bins, cumulative), overlap=overlap,
                                backend=backend)
        self.iou_types = None if iou_types is None else list(iou_types)
        self.plot = plot
        self._metrics = {}  # mode -> the evaluator's OcclusionMetric, None: nothing to report
        self._by_epoch = None  # set when training: validation reports are named by its step

    def _setup(self, runner, mode: str) -> None:
        """Check the model against the evaluator; find or add the evaluator's occlusion metric."""
        loop = runner.val_loop if mode == 'val' else runner.test_loop
        if loop is None or mode in self._metrics:
            return
        self._check_mask_head(runner, loop, mode)
        self._metrics[mode] = self._occlusion_metric(loop, mode)

    def _check_mask_head(self, runner, loop, mode: str) -> None:
        """Refuse 'segm' for a model without a mask head now, not after the first epoch."""
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

    def _occlusion_metric(self, loop, mode: str) -> Optional[OcclusionMetric]:
        """The evaluator's :class:`OcclusionMetric`, added beside its ``CocoMetric`` if it has
        none; None if the evaluator only formats results (``format_only=True``)."""
        metrics = loop.evaluator.metrics
        ours = [m for m in metrics if isinstance(m, OcclusionMetric)]
        if ours:
            return ours[0]
        coco = [m for m in metrics if isinstance(m, CocoMetric)]
        if not coco:
            raise TypeError(f'OcclusionEvalHook needs a CocoMetric in the {mode} evaluator, got '
                            f'{[type(m).__name__ for m in metrics]}')
        if coco[0].format_only:
            return None
        dataset = loop.dataloader.dataset
        if not getattr(dataset, 'ann_file', None):
            raise TypeError(f'OcclusionEvalHook: the {mode} dataset {type(dataset).__name__} has '
                            'no ann_file to take the ground truth from: put an '
                            f'OcclusionMetric(ann_file=...) into the {mode}_evaluator instead')
        iou_types = self.iou_types or [t for t in coco[0].metrics if t in IOU_TYPES]
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' loading chatter
            metric = OcclusionMetric(
                dataset.ann_file, metric=iou_types, proposal_nums=coco[0].proposal_nums,
                iou_thrs=coco[0].iou_thrs, backend_args=coco[0].backend_args,
                collect_device=coco[0].collect_device, **self.metric_args)
        metric.dataset_meta = dataset.metainfo
        metrics.append(metric)
        return metric

    def _write(self, runner, mode: str) -> None:
        """The reports of the epoch's evaluation as json and plot (main process)."""
        metric = self._metrics.get(mode)
        if metric is None or not metric.reports or not is_main_process():
            return
        out = osp.join(runner.work_dir, 'occlusion', mode)
        if mode == 'val' and self._by_epoch is not None:
            out += f'_epoch{runner.epoch}' if self._by_epoch else f'_iter{runner.iter}'
        dump(metric.reports, out + '.json')
        if self.plot:
            from ...visualization import plot_occlusion_reports
            plot_occlusion_reports(list(metric.reports.values()), out + '.png',
                                   title=f'{runner.experiment_name} ({mode})')
        runner.logger.info(f'occlusion report and plot: {out}.json/.png')

    def before_train(self, runner) -> None:
        self._by_epoch = hasattr(runner.train_loop, 'max_epochs')
        self._setup(runner, 'val')

    def before_val(self, runner) -> None:
        self._setup(runner, 'val')

    def before_test(self, runner) -> None:
        self._setup(runner, 'test')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._write(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._write(runner, 'test')
