"""The CPU path of ImageNet -> COCO: shape-classes, a classifier per study backbone whose checkpoint
hands its backbone to the occlusion-shapes detector, tools/study/pretrain_study.py's table, and the
whole path at a tiny size through tools/train.py and tools/test.py."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch

from conftest import ROOT, data_options, load_tool, run_tool

pytest.importorskip('mmpretrain')
CLS_CFG = osp.join(ROOT, 'configs', 'shapecls', 'tiedresnet-tiny_shapecls.py')
DET_CFG = osp.join(ROOT, 'configs', 'demo',
                   'retinanet_tiedresnet-tiny_fpn_1x_occshapes_pretrained.py')
STUDY = 'tools/study/pretrain_study.py'
# classifier -> the detector config that starts from its checkpoint
HAND_OFF = {'tiedresnet-tiny_shapecls': DET_CFG}
HAND_OFF.update({
    osp.basename(p)[:-3]: osp.join(ROOT, 'configs', 'study', 'pretrained',
                                   f'retinanet_{osp.basename(p)[:-len("_shapecls.py")]}'
                                   '_fpn_occshapes_pretrained.py')
    for p in glob.glob(osp.join(ROOT, 'configs', 'shapecls', '*.py'))
    if osp.basename(p) != 'tiedresnet-tiny_shapecls.py'})


@pytest.fixture(scope='module')
def study():
    return load_tool(STUDY)


def test_shape_classes_are_deterministic_and_in_mmpretrain_format(tmp_path):
    from plugin.datasets.shape_classes import CLASSES, make_dataset
    assert CLASSES[:3] == ('circle', 'rectangle', 'triangle')  # the detector's classes
    a, b = tmp_path / 'a', tmp_path / 'b'
    paths = make_dataset(str(a), 2, 1, size=48, seed=1)
    make_dataset(str(b), 2, 1, size=48, seed=1)
    lines = open(paths['train']).read().split('\n')[:-1]
    assert lines == [f'{name}/0000{i}.png {k}' for k, name in enumerate(CLASSES) for i in (0, 1)]
    assert open(paths['val']).read() == ''.join(f'{n}/00000.png {k}\n'
                                                for k, n in enumerate(CLASSES))
    for line in lines:
        rel = line.split()[0]
        assert (a / 'train' / rel).read_bytes() == (b / 'train' / rel).read_bytes()
    make_dataset(str(b), 2, 1, size=48, seed=2)
    assert (a / 'train' / lines[0].split()[0]).read_bytes() != \
        (b / 'train' / lines[0].split()[0]).read_bytes()
    with pytest.raises(ValueError, match='num_train'):
        make_dataset(str(a), 0, 1)
    with pytest.raises(ValueError, match='size'):
        make_dataset(str(a), 1, 1, size=16)


def test_every_class_draws_its_shape_large_and_visible():
    """The labelled shape covers a good part of the image in a colour far from the background."""
    import numpy as np

    from plugin.datasets.occlusion_shapes import _background
    from plugin.datasets.shape_classes import (CLASSES, MIN_CONTRAST, _colour, make_image,
                                               shape_mask)
    for label in range(len(CLASSES)):
        rng = np.random.default_rng(0)
        mask = shape_mask(rng, label, 32, 32, 20, 64).astype(bool)
        assert 0.08 < mask.mean() < 0.5 and not mask[0].any()  # about radius 20, centred
        img = make_image(0, 'train', label, 0, 64)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    rng = np.random.default_rng(3)
    background = _background(rng, 64)
    colour = _colour(rng, background)
    assert np.linalg.norm(colour - background.reshape(-1, 3).mean(0)) >= MIN_CONTRAST


def test_every_classifier_has_a_detector():
    classifiers = {osp.basename(p)[:-3]
                   for p in glob.glob(osp.join(ROOT, 'configs', 'shapecls', '*.py'))}
    assert classifiers == set(HAND_OFF) and all(map(osp.isfile, HAND_OFF.values()))
    assert {'tiedresnet14-tiny_shapecls', 'sknet14-tiny_shapecls', 'dr-r18-tiny_shapecls',
            'dsc-r18-tiny_shapecls'} <= classifiers


@pytest.mark.parametrize('classifier, detector', sorted(HAND_OFF.items()))
def test_classifier_checkpoint_starts_its_detector(classifier, detector, tmp_path):
    """The detector's backbone built from its config with the classifier's checkpoint holds the
    classifier's backbone tensors, every key and nothing else (no missing, no unexpected keys);
    the checkpoint it names is the one the classifier's run writes."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmpretrain.registry import MODELS as CLS_MODELS
    import plugin  # noqa: F401
    cls_cfg = Config.fromfile(osp.join(ROOT, 'configs', 'shapecls', classifier + '.py'))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = CLS_MODELS.build(cls_cfg.model)
    model.init_weights()
    expected = {k[len('backbone.'):]: v for k, v in model.state_dict().items()
                if k.startswith('backbone.')}
    det_cfg = Config.fromfile(detector)
    init_cfg = det_cfg.model.backbone.init_cfg
    assert init_cfg.checkpoint == (f'work_dirs/{classifier}/'
                                   f'epoch_{cls_cfg.train_cfg.max_epochs}.pth')
    ckpt = tmp_path / 'epoch.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    init_cfg.checkpoint = str(ckpt)
    init_default_scope(det_cfg.default_scope)  # 'ResNet' is mmdet's there, mmpretrain's above
    torch.manual_seed(1)
    backbone = MODELS.build(det_cfg.model.backbone)
    backbone.init_weights()
    got = backbone.state_dict()
    assert set(got) == set(expected), sorted(set(got) ^ set(expected))[:10]
    assert all(torch.equal(got[k], v) for k, v in expected.items())


def fake_run(config, seed, overall, buckets):
    report = dict(overall=dict(AP=overall),
                  buckets=[dict(name=f'b{k}', num_images=10 + k, AP=ap)
                           for k, ap in enumerate(buckets)])
    return dict(config=config, detector='retinanet', backbone='a', seed=seed, epochs=8,
                seconds=1.0, reports=dict(bbox=report))


def test_table_has_scratch_pretrained_and_their_difference(study):
    scratch, pre = 'configs/study/retinanet_a_fpn.py', 'configs/study/pretrained/retinanet_a.py'
    runs = [fake_run(scratch, 0, 0.10, [0.2, 0.1]), fake_run(scratch, 1, 0.14, [0.3, None]),
            fake_run(pre, 1, 0.20, [0.4, 0.3]), fake_run(pre, 0, 0.16, [0.2, 0.1])]
    pretrains = {'a': dict(top1=[[5, 61.0], [30, 87.25]])}
    rows = study.study.aggregate(runs)  # the occlusion study's mean over seeds
    table = study.format_table(rows, pretrains, ['a', 'b']).splitlines()
    assert table[0] == ('| backbone | start | shape-classes val top-1 (%) | epochs | seeds | '
                        'AP all | r b0 (10 img) | r b1 (11 img) |')
    assert table[2:] == [
        '| a | scratch | - | 8 | 0, 1 | 12.0 (10.0 / 14.0) | 25.0 (20.0 / 30.0) | - |',
        '| a | shape-classes | 87.2 | 8 | 0, 1 | 18.0 (16.0 / 20.0) | 30.0 (20.0 / 40.0) | '
        '20.0 (10.0 / 30.0) |',
        '| a | difference |  |  |  | +6.0 | +5.0 | - |',
        '| b | scratch | - | - | - | - | - | - |',
        '| b | shape-classes | - | - | - | - | - | - |',
        '| b | difference |  |  |  | - | - | - |']


def test_plot_has_a_panel_per_backbone_and_a_line_per_start(study, tmp_path):
    runs = [fake_run(f'configs/study/{d}retinanet_{b}_fpn.py', s, 0.1 + s, [0.1, 0.2])
            for d in ('', 'pretrained/') for b in ('a', 'b') for s in (0, 1)]
    for run in runs:
        run['backbone'] = osp.basename(run['config']).split('_')[1]
    rows = study.study.aggregate(runs)
    rows.append(rows[0] | dict(iou_type='segm'))  # only box AP is drawn
    got = study.plot_rows(rows)
    assert sorted((r['detector'], r['backbone']) for r in got) == [
        ('a', 'from scratch'), ('a', 'pretrained'), ('b', 'from scratch'), ('b', 'pretrained')]
    out = study.plot_occlusion_study(got, str(tmp_path / 'p.png'))
    assert (tmp_path / 'p.png').stat().st_size > 0 and out.endswith('p.png')


def test_scratch_runs_are_taken_from_a_study_json_at_equal_budget(tmp_path):
    occlusion_study = load_tool('tools/study/occlusion_study.py')
    scratch = osp.join(ROOT, 'configs/study/retinanet_a_fpn.py')
    runs = [fake_run('configs/study/retinanet_a_fpn.py', s, 0.1, [0.1]) for s in (0, 1, 2)]
    runs.append(fake_run('configs/study/retinanet_b_fpn.py', 0, 0.1, [0.1]))
    path = tmp_path / 'occlusion_study.json'
    path.write_text(json.dumps(dict(runs=runs)))
    got = occlusion_study.study_runs(str(path), [scratch], [0, 1], {scratch: 8})
    assert sorted(got) == [('configs/study/retinanet_a_fpn.py', 0),
                           ('configs/study/retinanet_a_fpn.py', 1)]
    assert occlusion_study.study_runs(str(path), [scratch], [0, 1], {scratch: 12}) == {}


def test_shipped_detectors_load_what_their_classifiers_write(study):
    for backbone in study.BACKBONES:
        configs = study.configs_of(backbone, 'retinanet')
        ckpt = study.checkpoint_of(configs['pretrained'], configs['classifier'])
        assert ckpt == osp.join(ROOT, 'work_dirs', f'{backbone}_shapecls', 'epoch_20.pth')


def test_checkpoint_of_another_epoch_is_refused(study, tmp_path):
    detector = tmp_path / 'det.py'
    detector.write_text("model = dict(backbone=dict(init_cfg=dict(checkpoint='w/epoch_3.pth')))\n")
    classifier = tmp_path / 'cls.py'
    classifier.write_text('train_cfg = dict(max_epochs=30)\n')
    with pytest.raises(ValueError, match=r'det\.py loads w/epoch_3\.pth, but .*cls\.py trains 30'):
        study.checkpoint_of(str(detector), str(classifier))


@pytest.mark.parametrize('args, message', [
    (['--backbones', 'nope'], '--backbones nope: no such config'),
    (['--seeds', '1', '1'], '--seeds'), (['--jobs', '0'], '--jobs')])
def test_bad_arguments_name_the_option(study, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        study.parse_args(args + ['--page', ''])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_page_without_markers_is_refused(study, capsys, tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# no markers\n<!-- study:begin -->\n<!-- study:end -->\n')
    with pytest.raises(SystemExit):
        study.parse_args(['--page', str(page)])
    assert 'pretrain:begin' in capsys.readouterr().err


def test_the_study_page_has_the_pretrain_block(study):
    page = osp.join(ROOT, 'docs', 'occlusion_study.md')
    # pretrain_study writes its block with occlusion_study's page helpers, between its own markers
    assert len(study.study.split_page(page, study.BEGIN, study.END)) == 3


@pytest.mark.e2e
def test_pretrain_then_detect(tmp_path, shapes_data):
    """1 epoch of the classifier on 24 images, its top-1 through tools/test.py, then 1 iteration
    of the detector started from its checkpoint: no missing or unexpected backbone key."""
    cls_root = tmp_path / 'shape_classes'
    run_tool(['tools/dataset/make_shape_classes.py', '--out', str(cls_root), '--num-train', '4',
              '--num-val', '2', '--size', '48'])
    work = tmp_path / 'cls'
    run_tool(['tools/train.py', CLS_CFG, '--work-dir', str(work), '--cfg-options',
              f'train_dataloader.dataset.data_root={cls_root}/',
              f'val_dataloader.dataset.data_root={cls_root}/',
              f'test_dataloader.dataset.data_root={cls_root}/', 'train_cfg.max_epochs=1',
              'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
              'train_dataloader.batch_size=8'])
    ckpt = work / 'epoch_1.pth'
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
                     *data_options(shapes_data['root']), 'train_dataloader.dataset.indices=4',
                     'val_dataloader.dataset.indices=5'])
    log = proc.stdout + proc.stderr
    assert f'load backbone. in model from: {ckpt}' in log
    assert 'missing keys' not in log and 'unexpected key' not in log
    assert 'Epoch(train) [1][1/1]' in log  # one iteration
    assert 'occlusion/0-0.2/bbox_AP' in log  # validated (mmdet's CocoMetric logs no keys
    # when an untrained model detects nothing)
