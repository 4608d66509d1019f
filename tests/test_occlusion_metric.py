"""OcclusionCocoMetric and OcclusionEvalHook: only the images evaluated count (in one process and
in two), format_only formats and evaluates nothing, and a model without a mask head asked for
'segm' is refused before the first iteration."""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from pycocotools.cocoeval import COCOeval

from conftest import DEMO_CFG, ROOT, data_options
from plugin.datasets.occlusion_shapes import CLASSES
from synthetic import synthetic_detections
from plugin.evaluation import OcclusionCocoMetric, OcclusionEvalHook, OcclusionMetric
from plugin.evaluation.cocoeval_subsets import load_results
from plugin.evaluation.occlusion import evaluate_by_occlusion
from plugin.evaluation.results_io import load_gt

SUBSET = [2, 3, 5, 7, 8]


def data_samples(coco, img_ids, seed=0):
    """The dicts a detector's DetDataSamples become in the evaluator, for ``img_ids``."""
    dets = synthetic_detections(coco, 'bbox', seed=seed)
    cat_ids = sorted(coco.getCatIds())
    out = []
    for img_id in img_ids:
        img = coco.imgs[img_id]
        mine = [d for d in dets if d['image_id'] == img_id]
        boxes = torch.tensor([d['bbox'] for d in mine], dtype=torch.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        out.append(dict(img_id=img_id, ori_shape=(img['height'], img['width']),
                        pred_instances=dict(
                            bboxes=boxes, scores=torch.tensor([d['score'] for d in mine]),
                            labels=torch.tensor([cat_ids.index(d['category_id']) for d in mine]))))
    return out, [d for d in dets if d['image_id'] in img_ids]


def run_metric(metric, samples, size=None):
    """Process ``samples``, then evaluate the ``size`` samples of every rank."""
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples) if size is None else size)


def cocoeval_ap(coco, dets, img_ids):
    ev = COCOeval(coco, load_results(coco, dets), 'bbox')
    ev.params.imgIds = img_ids
    ev.params.maxDets = [100, 300, 1000]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


def test_metric_counts_only_the_evaluated_images(shapes_data):
    coco = load_gt(shapes_data['val'])
    samples, dets = data_samples(coco, SUBSET)
    metric = OcclusionCocoMetric(ann_file=shapes_data['val'])
    metrics = run_metric(metric, samples)
    report = metric.reports['bbox']
    assert report['overall']['num_images'] == len(SUBSET)
    assert sum(metrics[k] for k in metrics if k.endswith('num_images')) == len(SUBSET)
    ref = evaluate_by_occlusion(coco, load_results(coco, dets), 'bbox', img_ids=SUBSET,
                                max_dets=(100, 300, 1000))
    assert [b['AP'] for b in report['buckets']] == [b['AP'] for b in ref['buckets']]
    assert report['overall']['AP'] == ref['overall']['AP']
    # the plain COCO keys too: over the 5 images, not the annotation file's 10
    assert metrics['coco/bbox_mAP'] == round(cocoeval_ap(coco, dets, SUBSET), 3)
    assert metrics['coco/bbox_mAP'] > round(cocoeval_ap(coco, dets, coco.getImgIds()), 3) + 0.1


def test_two_processes_give_the_numbers_of_one(shapes_data, tmp_path):
    """Results gathered from 2 gloo ranks (the second padded by a repeated sample, as a
    distributed sampler does) give exactly the single-process numbers."""
    coco = load_gt(shapes_data['val'])
    metric = OcclusionCocoMetric(ann_file=shapes_data['val'])
    single = run_metric(metric, data_samples(coco, SUBSET)[0])
    out = tmp_path / 'metrics.json'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tests', 'occlusion_metric_worker.py'),
                           shapes_data['val'], json.dumps(SUBSET), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    two = json.loads((tmp_path / 'metrics.json.rank0').read_text())
    assert two == pytest.approx(single)
    assert sum(v for k, v in two.items() if k.endswith('num_images')) == len(SUBSET)
    # the other rank returns the same keys, though only rank 0 computed them
    assert json.loads((tmp_path / 'metrics.json.rank1').read_text()) == two


def test_format_only_returns_nothing(shapes_data, tmp_path):
    prefix = str(tmp_path / 'submission')
    metric = OcclusionCocoMetric(ann_file=shapes_data['val'], format_only=True,
                                 outfile_prefix=prefix)
    samples = data_samples(load_gt(shapes_data['val']), SUBSET)[0]
    assert run_metric(metric, samples) == {}
    assert metric.reports == {}
    assert len(json.load(open(prefix + '.bbox.json'))) > 0  # formatted, as CocoMetric does


class Dataset(list):
    metainfo = dict(classes=CLASSES)


def loop_runner(metrics, tmp_path, ann_file=''):
    """A runner whose val and test loops evaluate ``metrics`` on a dataset of ``ann_file``."""
    from mmengine.logging import MMLogger
    dataset = Dataset(SUBSET)
    dataset.ann_file = ann_file
    loop = SimpleNamespace(evaluator=SimpleNamespace(metrics=metrics),
                           dataloader=SimpleNamespace(dataset=dataset))
    return SimpleNamespace(val_loop=loop, test_loop=loop, model=None, work_dir=str(tmp_path),
                           experiment_name='loop', logger=MMLogger.get_instance('loop_runner'))


def test_hook_does_nothing_for_a_format_only_evaluator(shapes_data, tmp_path):
    from mmdet.evaluation import CocoMetric
    coco_metric = CocoMetric(ann_file=shapes_data['val'], format_only=True,
                             outfile_prefix=str(tmp_path / 'submission'))
    runner = loop_runner([coco_metric], tmp_path, shapes_data['val'])
    hook = OcclusionEvalHook(plot=False)
    hook.before_test(runner)
    assert runner.test_loop.evaluator.metrics == [coco_metric]  # no metric added
    metrics = {}
    hook.after_test_epoch(runner, metrics)
    assert metrics == {} and not osp.exists(tmp_path / 'occlusion')


def test_hook_puts_one_occlusion_metric_beside_coco_metric(shapes_data, tmp_path):
    """The metric the hook adds gives the occlusion keys of an OcclusionCocoMetric with the
    CocoMetric's maxDets; the evaluator returns them, the hook writes their reports."""
    from mmdet.evaluation import CocoMetric
    coco_metric = CocoMetric(ann_file=shapes_data['val'], proposal_nums=(5, 10, 20))
    runner = loop_runner([coco_metric], tmp_path, shapes_data['val'])
    hook = OcclusionEvalHook(bins=[0, 0.3, 'inf'], plot=False)
    hook.before_val(runner)
    hook.before_val(runner)  # a second validation adds nothing
    metrics = runner.val_loop.evaluator.metrics
    assert len(metrics) == 2 and type(metrics[1]) is OcclusionMetric
    assert metrics[1].proposal_nums == [5, 10, 20] and metrics[1].metrics == ['bbox']

    samples = data_samples(load_gt(shapes_data['val']), SUBSET)[0]
    for metric in metrics:
        metric.dataset_meta = dict(classes=CLASSES)
        metric.process({}, samples)
    returned = {k: v for metric in metrics for k, v in metric.evaluate(len(samples)).items()}
    both = run_metric(OcclusionCocoMetric(ann_file=shapes_data['val'], bins=[0, 0.3, 'inf'],
                                          proposal_nums=(5, 10, 20)), samples)
    def occlusion_keys(metrics):
        return {k: v for k, v in metrics.items() if k.startswith('occlusion/')}

    assert occlusion_keys(returned) == occlusion_keys(both)
    assert list(occlusion_keys(returned))[:2] == ['occlusion/0-0.3/num_images',
                                                  'occlusion/0-0.3/bbox_AP']
    assert len(occlusion_keys(returned)) == 14 and 'coco/bbox_mAP' in returned
    hook.after_val_epoch(runner, returned)
    assert json.load(open(tmp_path / 'occlusion' / 'val.json')) == metrics[1].reports


def test_hook_parses_bins_once(shapes_data, tmp_path, monkeypatch):
    """The hook parses (and checks) its bins when the config is built; the metric it adds takes
    the parsed buckets, cumulative ones included, and never parses them again."""
    from mmdet.evaluation import CocoMetric

    from plugin.evaluation.hooks import occlusion_eval_hook
    from plugin.evaluation.metrics import occlusion_metric
    from plugin.structures.occlusion_ratio import parse_bins
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return parse_bins(*args, **kwargs)

    monkeypatch.setattr(occlusion_eval_hook, 'parse_bins', counting)
    monkeypatch.setattr(occlusion_metric, 'parse_bins', counting)
    runner = loop_runner([CocoMetric(ann_file=shapes_data['val'])], tmp_path, shapes_data['val'])
    hook = OcclusionEvalHook(bins=[0, 0.3, 'inf'], cumulative=True, plot=False)
    hook.before_val(runner)
    added = runner.val_loop.evaluator.metrics[1]
    assert len(calls) == 1
    assert added.buckets.cumulative and added.buckets.names == ['>=0', '>=0.3']


def test_hook_uses_the_evaluators_occlusion_metric_and_needs_a_coco_metric(shapes_data,
                                                                            tmp_path):
    ours = OcclusionCocoMetric(ann_file=shapes_data['val'])
    runner = loop_runner([ours], tmp_path)
    OcclusionEvalHook().before_test(runner)
    assert runner.test_loop.evaluator.metrics == [ours]
    with pytest.raises(TypeError, match=r"CocoMetric in the val evaluator, got \['Dataset'\]"):
        OcclusionEvalHook().before_val(loop_runner([Dataset()], tmp_path))
    from mmdet.evaluation import CocoMetric
    with pytest.raises(TypeError, match='the test dataset Dataset has no ann_file'):
        OcclusionEvalHook().before_test(loop_runner([CocoMetric()], tmp_path))


def build_demo_runner(shapes_data, work_dir, *options):
    from plugin.apis import add_runner_args, build_runner, load_config
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_runner_args(parser)
    args = parser.parse_args([DEMO_CFG, '--work-dir', str(work_dir), '--cfg-options',
                              *data_options(shapes_data['root']), *options])
    return build_runner(load_config(args))


def test_hook_counts_only_the_evaluated_images(shapes_data, tmp_path):
    """``indices=4``: the hook beside mmdet's CocoMetric reports the 4 images tested."""
    runner = build_demo_runner(shapes_data, tmp_path, 'test_dataloader.dataset.indices=4',
                               'model.test_cfg.score_thr=0')
    metrics = runner.test()
    assert sum(v for k, v in metrics.items()
               if k.startswith('occlusion/') and k.endswith('/num_images')) == 4
    report = json.load(open(tmp_path / 'occlusion' / 'test.json'))['bbox']
    assert report['overall']['num_images'] == 4
    assert sum(b['num_images'] for b in report['buckets']) == 4


@pytest.mark.parametrize('mode', ['train', 'test'])
def test_segm_without_mask_head_fails_before_the_first_iteration(shapes_data, tmp_path, mode):
    runner = build_demo_runner(shapes_data, tmp_path, f'{mode}_evaluator.metric=[bbox,segm]'
                               if mode == 'test' else 'val_evaluator.metric=[bbox,segm]')
    steps = []
    step = 'train_step' if mode == 'train' else 'test_step'
    setattr(runner.model, step, lambda *args, **kwargs: steps.append(1))
    evaluator = 'val_evaluator' if mode == 'train' else 'test_evaluator'
    with pytest.raises(ValueError, match=rf"{evaluator}\.metric asks for 'segm' .* the model "
                                         'RetinaNet has no mask head'):
        getattr(runner, mode)()
    assert steps == [] and runner.iter == 0


@pytest.mark.parametrize('config, has_masks', [
    ('retinanet/retinanet_r18_fpn_1x_coco.py', False),
    ('mask_rcnn/mask-rcnn_r18_fpn_8xb8-amp-lsj-200e_coco.py', True),
    ('rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', True),  # masks from its bbox_head.mask_head
    ('solov2/solov2_r50_fpn_1x_coco.py', True),
    ('mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', True),  # panoptic_head.mask_embed
])
def test_mask_predictors_are_recognised(config, has_masks):
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from plugin.evaluation.hooks.occlusion_eval_hook import _predicts_masks
    register_all_modules()
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', config))
    assert _predicts_masks(MODELS.build(cfg.model)) is has_masks
