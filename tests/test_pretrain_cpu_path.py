"""The CPU path of ImageNet -> COCO: pretrain the demo backbone on shape-classes through
tools/train.py (an mmpretrain config), test it with tools/test.py, then start the occlusion-shapes
detector from that checkpoint through tools/train.py."""
import os.path as osp
import pickle

import pytest

from conftest import ROOT, data_options, run_tool

pytest.importorskip('mmpretrain')
CLS_CFG = osp.join(ROOT, 'configs', 'shapecls', 'tiedresnet-tiny_shapecls.py')
DET_CFG = osp.join(ROOT, 'configs', 'demo', 'retinanet_tiedresnet-tiny_fpn_1x_occshapes_pretrained.py')


def test_shape_classes_are_deterministic_and_in_mmpretrain_format(tmp_path):
    from plugin.datasets.shape_classes import make_dataset
    a, b = tmp_path / 'a', tmp_path / 'b'
    paths = make_dataset(str(a), 2, 1, size=48, seed=1)
    make_dataset(str(b), 2, 1, size=48, seed=1)
    lines = open(paths['train']).read().split('\n')[:-1]
    assert lines == ['circle/00000.png 0', 'circle/00001.png 0', 'rectangle/00000.png 1',
                     'rectangle/00001.png 1', 'triangle/00000.png 2', 'triangle/00001.png 2']
    for line in lines:
        rel = line.split()[0]
        assert (a / 'train' / rel).read_bytes() == (b / 'train' / rel).read_bytes()
    with pytest.raises(ValueError, match='num_train'):
        make_dataset(str(a), 0, 1)


@pytest.mark.e2e
def test_pretrain_then_detect(tmp_path, shapes_data):
    cls_root = tmp_path / 'shape_classes'
    run_tool(['tools/dataset/make_shape_classes.py', '--out', str(cls_root), '--num-train', '8',
              '--num-val', '4', '--size', '48'])
    work = tmp_path / 'cls'
    run_tool(['tools/train.py', CLS_CFG, '--work-dir', str(work), '--cfg-options',
              f'data_root={cls_root}/', f'train_dataloader.dataset.data_root={cls_root}/',
              f'val_dataloader.dataset.data_root={cls_root}/',
              f'test_dataloader.dataset.data_root={cls_root}/', 'train_cfg.max_epochs=2',
              'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
              'train_dataloader.batch_size=8'])
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    out = tmp_path / 'preds.pkl'
    proc = run_tool(['tools/test.py', CLS_CFG, str(ckpt), '--work-dir', str(work), '--out',
                     str(out), '--cfg-options', f'test_dataloader.dataset.data_root={cls_root}/'])
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        preds = pickle.load(f)  # our own file, just written
    assert len(preds) == 12 and all('pred_label' in p for p in preds)

    det_work = tmp_path / 'det'
    proc = run_tool(['tools/train.py', DET_CFG, '--work-dir', str(det_work), '--cfg-options',
                     f'model.backbone.init_cfg.checkpoint={ckpt}',
                     *data_options(shapes_data['root'])])
    log = proc.stdout + proc.stderr
    assert f'load backbone. in model from: {ckpt}' in log
    assert 'missing keys' not in log and 'unexpected key' not in log
    assert 'occlusion/0-0.2/bbox_AP' in log  # validated (mmdet's CocoMetric logs no keys
    # when an untrained model detects nothing)
