"""Validation during 2-process training reports what tools/test.py finds on the saved checkpoint.

The demo RetinaNet trains its BN layers (norm_eval=False) with plain BN: without a buffer sync,
every rank validates with its own running statistics and rank 0's are saved, so validation and
a later test of ``epoch_1.pth`` disagreed (issue 15, item 3). Both runs here evaluate one image
per batch, so batching and padding are the same; the processes run in their own session under a
deadline (a stuck gloo worker fails the test, it cannot hang the suite)."""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys

import pytest

from conftest import DEMO_CFG, ROOT, data_options

pytestmark = pytest.mark.e2e
DEADLINE_S = 300


def run(args, env=None):
    """Run ``args`` in its own session; kill the whole session after the deadline."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torch.distributed.run's workers share the session
        output, _ = proc.communicate()
        pytest.fail(f'{args[0]} did not finish within {DEADLINE_S} s:\n{output[-4000:]}')
    assert proc.returncode == 0, f'{" ".join(args)} exited {proc.returncode}:\n{output[-6000:]}'
    return output


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def bbox_metrics(metrics):
    return {k: v for k, v in metrics.items() if k.startswith('coco/bbox_') and
            isinstance(v, float)}


def occlusion_aps(report_path):
    """``{bucket: (AP, AP50, AP75)}`` of an OcclusionEvalHook report."""
    with open(report_path) as f:
        buckets = json.load(f)['bbox']['buckets']
    return {b['name']: (b['AP'], b['AP50'], b['AP75']) for b in buckets}


def test_validation_in_two_processes_equals_testing_the_checkpoint(shapes_data, tmp_path):
    opts = data_options(shapes_data['root'], batch_size=2) + [
        'val_dataloader.batch_size=1', 'test_dataloader.batch_size=1',
        'model.test_cfg.score_thr=0']  # scores near the prior after 6 iterations: keep them
    train_dir, test_dir = str(tmp_path / 'train'), str(tmp_path / 'test')
    run([osp.join(ROOT, 'tools', 'dist_train.sh'), DEMO_CFG, '2', '--work-dir', train_dir,
         '--cfg-options', *opts],
        env=dict(CUDA_VISIBLE_DEVICES='', PYTHON=sys.executable, PORT=str(free_port())))
    (scalars, ) = glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        val = [line for line in map(json.loads, f) if 'coco/bbox_mAP' in line][-1]

    run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), DEMO_CFG,
         osp.join(train_dir, 'epoch_1.pth'), '--work-dir', test_dir, '--cfg-options', *opts])
    (log_json, ) = [p for p in glob.glob(osp.join(test_dir, '*', '*.json'))
                    if osp.basename(p) == osp.basename(osp.dirname(p)) + '.json']
    with open(log_json) as f:
        test = json.load(f)

    assert len(bbox_metrics(val)) == 6 and bbox_metrics(val) == bbox_metrics(test)
    assert occlusion_aps(osp.join(train_dir, 'occlusion', 'val_epoch1.json')) == \
        occlusion_aps(osp.join(test_dir, 'occlusion', 'test.json'))


def seg_options(root, iters=4):
    """The seg demo shrunk to ``iters`` iterations of 2 images on ``root``; validation and the
    checkpoint at the last iteration, one image per val/test batch."""
    root = root.rstrip('/') + '/'
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.0.end={iters}',
            'train_dataloader.batch_size=2', 'val_dataloader.batch_size=1',
            'test_dataloader.batch_size=1', 'model.data_preprocessor.size=[96,96]'] + [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def test_iteration_based_validation_equals_testing_the_checkpoint(shapes_data, tmp_path):
    """The mmseg demo (IterBasedTrainLoop): its checkpoint is saved before validation runs."""
    cfg = osp.join(ROOT, 'configs', 'demo', 'fcn_r18-tiny-d8_occshapes-seg.py')
    opts = seg_options(shapes_data['root'])
    train_dir, test_dir = str(tmp_path / 'train'), str(tmp_path / 'test')
    run([osp.join(ROOT, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir', train_dir,
         '--cfg-options', *opts],
        env=dict(CUDA_VISIBLE_DEVICES='', PYTHON=sys.executable, PORT=str(free_port())))
    (scalars, ) = glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        val = [line for line in map(json.loads, f) if 'mIoU' in line][-1]
    run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), cfg,
         osp.join(train_dir, 'iter_4.pth'), '--work-dir', test_dir, '--cfg-options', *opts])
    (log_json, ) = [p for p in glob.glob(osp.join(test_dir, '*', '*.json'))
                    if osp.basename(p) == osp.basename(osp.dirname(p)) + '.json']
    with open(log_json) as f:
        test = json.load(f)
    keys = ('aAcc', 'mIoU', 'mAcc')
    assert {k: val[k] for k in keys} == {k: test[k] for k in keys}
