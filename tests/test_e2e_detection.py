"""Tiny RetinaNet runs through tools/train.py, tools/test.py and mmdet's own train.py (CPU)."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

from conftest import DEMO_CFG, ROOT, data_options, run_tool

pytestmark = pytest.mark.e2e
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TEST = osp.join(ROOT, 'tools', 'test.py')
BUCKETS = ('0-0.2', '0.2-0.4', '0.4-0.6', '0.6-0.8', '0.8-inf')


def scalars(work_dir):
    """Every line of the LocalVisBackend's scalars.json of a run."""
    (path,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def options(root, **kwargs):
    """data_options plus score_thr=0: after six iterations from scratch the scores sit near the
    0.01 prior, so every box is kept and COCO evaluation gets detections."""
    return data_options(root, **kwargs) + ['model.test_cfg.score_thr=0']


def log_text(work_dir):
    return ''.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))


@pytest.fixture(scope='module')
def trained(shapes_data, tmp_path_factory):
    """One epoch of the demo RetinaNet on the tiny data; val runs the OcclusionEvalHook."""
    work_dir = str(tmp_path_factory.mktemp('retinanet'))
    run_tool([TRAIN, DEMO_CFG, '--work-dir', work_dir,
              '--cfg-options', *options(shapes_data['root'])])
    return work_dir


def test_hook_logs_table_scalars_and_plot(trained):
    log = log_text(trained)
    assert 'bbox AP by occlusion ratio (box overlap)' in log
    val = [s for s in scalars(trained) if 'coco/bbox_mAP' in s][-1]
    assert sum(val[f'occlusion/{b}/num_images'] for b in BUCKETS) == 10
    for bucket in BUCKETS:
        assert 0 <= val[f'occlusion/{bucket}/bbox_AP'] <= 1
        assert val[f'occlusion/{bucket}/num_images'] >= 1
    assert osp.getsize(osp.join(trained, 'occlusion', 'val_epoch1.png')) > 10_000
    report = json.load(open(osp.join(trained, 'occlusion', 'val_epoch1.json')))
    assert [b['name'] for b in report['bbox']['buckets']][-1] == '0.8-inf'


def test_resume_keeps_weights_only(trained, shapes_data, tmp_path):
    ckpt = osp.join(trained, 'epoch_1.pth')
    # Without the plugin, torch's default weights_only load rejects mmengine's checkpoint...
    probe = ('import torch, sys; sys.path.insert(0, {root!r}); {imp}'
             'torch.load({ckpt!r}, map_location="cpu"); print("loaded")')
    bare = subprocess.run([sys.executable, '-c', probe.format(root=ROOT, imp='', ckpt=ckpt)],
                          capture_output=True, text=True)
    assert bare.returncode != 0 and 'HistoryBuffer' in bare.stderr
    # ...and with it the same call (weights_only still on) reads it.
    fixed = run_tool([sys.executable, '-c', probe.format(root=ROOT, imp='import plugin; ',
                                                         ckpt=ckpt)])
    assert 'loaded' in fixed.stdout
    work_dir = str(tmp_path / 'resumed')
    run_tool([TRAIN, DEMO_CFG, '--work-dir', work_dir, '--resume', ckpt,
              '--cfg-options', *options(shapes_data['root'], max_epochs=2)])
    log = log_text(work_dir)
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2]' in log and osp.exists(osp.join(work_dir, 'epoch_2.pth'))


def test_test_py_pkl_feeds_occlusion_eval(trained, shapes_data, tmp_path):
    pkl = str(tmp_path / 'results.pkl')
    run_tool([TEST, DEMO_CFG, osp.join(trained, 'epoch_1.pth'), '--work-dir', str(tmp_path),
              '--out', pkl, '--show-dir', 'painted',
              '--cfg-options', *options(shapes_data['root'])])
    assert len(glob.glob(osp.join(tmp_path, '*', 'painted', '*.png'))) == 10
    hook_report = json.load(open(osp.join(tmp_path, 'occlusion', 'test.json')))['bbox']
    out = str(tmp_path / 'report.json')
    run_tool([osp.join(ROOT, 'tools', 'analysis', 'occlusion_eval.py'), shapes_data['val'], pkl,
              '--iou-type', 'bbox', '--out', out])
    cli_report = json.load(open(out))
    # max_per_img=100, so mmdet's maxDets=1000 and pycocotools' 100 give the same AP
    assert [b['AP'] for b in cli_report['buckets']] == [b['AP'] for b in hook_report['buckets']]


def test_occlusion_metric_as_evaluator(shapes_data, tmp_path):
    """OcclusionCocoMetric replaces CocoMetric; the hook then reuses its reports."""
    work_dir = str(tmp_path)
    opts = options(shapes_data['root']) + ['val_evaluator.type=OcclusionCocoMetric',
                                                 'val_evaluator.bins=[0,0.4,inf]']
    run_tool([TRAIN, DEMO_CFG, '--work-dir', work_dir, '--cfg-options', *opts])
    val = [s for s in scalars(work_dir) if 'coco/bbox_mAP' in s][-1]
    assert {'occlusion/0-0.4/bbox_AP', 'occlusion/0.4-inf/bbox_AP'} <= set(val)
    assert not any(k.startswith('occlusion/0.2') for k in val)
    assert log_text(work_dir).count('bbox AP by occlusion ratio') == 1  # evaluated once
    assert osp.exists(osp.join(work_dir, 'occlusion', 'val_epoch1.png'))


def test_mmdet_own_train_py(shapes_data, tmp_path):
    """mmdet's tools/train.py runs our config: custom_imports brings the plugin and its fixes."""
    import mmdet
    mmdet_train = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    run_tool([mmdet_train, DEMO_CFG, '--work-dir', str(tmp_path),
              '--cfg-options', *options(shapes_data['root'])])
    assert osp.exists(osp.join(tmp_path, 'occlusion', 'val_epoch1.png'))


def test_two_process_gloo_training(shapes_data, tmp_path):
    """tools/dist_train.sh CFG 2 (torch.distributed.run + --launcher pytorch) without CUDA."""
    env = dict(CUDA_VISIBLE_DEVICES='', PYTHON=sys.executable, PORT='29533')
    proc = run_tool([osp.join(ROOT, 'tools', 'dist_train.sh'), DEMO_CFG, '2',
                     '--work-dir', str(tmp_path), '--cfg-options',
                     *options(shapes_data['root'], batch_size=2)], env=env)
    log = log_text(str(tmp_path))
    assert 'Distributed training: True' in log
    assert 'distributed gloo process group on CPU' in proc.stdout + proc.stderr
    # 24 images / (2 ranks x 2 per batch) = 6 iterations per epoch
    assert 'Epoch(train) [1][6/6]' in log
    val = [s for s in scalars(str(tmp_path)) if 'coco/bbox_mAP' in s][-1]
    assert sum(val[f'occlusion/{b}/num_images'] for b in BUCKETS) == 10
