"""tools/train.py and tools/test.py dispatch mmseg configs (default_scope='mmseg') too."""
import glob
import os.path as osp

import cv2
import pytest

from conftest import ROOT, run_tool

pytestmark = pytest.mark.e2e
SEG_CFG = osp.join(ROOT, 'configs', 'demo', 'fcn_r18-tiny-d8_occshapes-seg.py')


def seg_options(root, iters=4):
    root = root.rstrip('/') + '/'
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', 'train_dataloader.batch_size=2',
            'default_hooks.logger.interval=1', 'model.data_preprocessor.size=[96,96]'] + [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def test_train_and_test_an_mmseg_config(shapes_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    run_tool([osp.join(ROOT, 'tools', 'train.py'), SEG_CFG, '--work-dir', work_dir,
              '--cfg-options', *seg_options(shapes_data['root'])])
    log = ''.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Iter(train) [4/4]' in log and 'mIoU' in log
    out = str(tmp_path / 'pred')
    run_tool([osp.join(ROOT, 'tools', 'test.py'), SEG_CFG, osp.join(work_dir, 'iter_4.pth'),
              '--work-dir', work_dir, '--out', out,
              '--cfg-options', *seg_options(shapes_data['root'])])
    maps = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(maps) == 10
    label = cv2.imread(maps[0], cv2.IMREAD_UNCHANGED)
    assert label.shape == (96, 96) and label.max() <= 3
