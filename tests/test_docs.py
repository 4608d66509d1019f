"""The documentation site builds with warnings as errors, and its generated pages match configs/."""
import os.path as osp
import re
import sys

import pytest

from conftest import ROOT, load_tool, run_tool


@pytest.fixture(scope='module')
def zoo():
    return load_tool('tools/docs/model_zoo.py')


def zoo_rows():
    """``{config name: {column: cell}}`` of docs/model_zoo.md's tables, columns after the config
    (baselines keyed 'mmdet::name')."""
    rows, columns = {}, []
    with open(osp.join(ROOT, 'docs', 'model_zoo.md')) as f:
        for line in f:
            if line.startswith('| config |'):
                columns = [c.strip() for c in line.strip().strip('|').split('|')][1:]
            m = re.match(r'\| (?:(mmdet|mmseg|mmpretrain) )?`([^`]+)`(?: \(baseline\))? \|(.*)\|$',
                         line)
            if m:
                key = f'{m[1]}::{m[2]}' if m[1] else m[2]
                rows[key] = dict(zip(columns, (c.strip() for c in m[3].split('|')), strict=True))
    return rows


def test_mkdocs_build_strict(tmp_path):
    proc = run_tool([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
                     str(tmp_path / 'site')], timeout=300)
    assert 'WARNING' not in proc.stderr, proc.stderr
    for page in ('index.html', 'model_zoo/index.html', 'occlusion_study/index.html',
                 'study/occlusion_study.png'):
        assert (tmp_path / 'site' / page).is_file(), page


def test_model_zoo_lists_every_config_and_its_baselines(zoo):
    rows = zoo_rows()
    configs = zoo.find_configs(osp.join(ROOT, 'configs'))
    missing = [p for p in configs if osp.basename(p)[:-3] not in rows]
    assert not missing, f'regenerate docs/model_zoo.md (tools/docs/model_zoo.py): {missing}'
    assert not set(rows) - {osp.basename(p)[:-3] for p in configs} - {
        f"{u.split('::')[0]}::{osp.basename(u)[:-3]}"
        for u in map(zoo.upstream_config, configs) if u}, 'rows of configs that no longer exist'
    assert 'mmdet::retinanet_r50_fpn_1x_coco' in rows
    assert 'mmpretrain::resnet50_8xb32_in1k' in rows
    assert all(r['CPU latency (ms)'] != '-' for r in rows.values()), 'every row has its latency'


def test_model_zoo_quotes_the_papers_imagenet_top1():
    rows = zoo_rows()
    assert rows['sknet50_8xb32_in1k']['paper top-1'].startswith('79.21 ')
    assert rows['sknet101_8xb32_in1k']['paper top-1'].startswith('79.81 ')
    assert rows['dr-shufflenetv2-0.5x_16xb64_in1k']['paper top-1'].startswith('67.1 ')
    assert '+1.5 over ResNet-50' in rows['tiedresnet50_8xb32_in1k']['paper top-1']
    assert 'paper top-1' not in rows['retinanet_tiedresnet50_fpn_2x_coco'], 'ImageNet table only'


@pytest.mark.parametrize('config', ['configs/demo/retinanet_r18-tiny_fpn_1x_occshapes.py',
                                    'configs/study/retinanet_sknet14-tiny_fpn_occshapes.py',
                                    'configs/demo/fcn_r18-tiny-d8_occshapes-seg.py',
                                    'configs/shapecls/tiedresnet-tiny_shapecls.py',
                                    'configs/imagenet/dr-shufflenetv2-0.5x_16xb64_in1k.py'])
def test_model_zoo_numbers_are_the_generators(zoo, config):
    """Parameters and FLOPs of the page equal a fresh measurement (latency depends on the CPU)."""
    row = zoo.measure(osp.join(ROOT, config), repeat=1, with_latency=False, memo={})
    cells = zoo_rows()[osp.basename(config)[:-3]]
    assert list(cells.values())[:8] == [
        row['model'], row['backbone'], row['neck'], f"{row['backbone_params'] / 1e6:.2f}",
        zoo._g(row['backbone_flops_224']), f"{row['model_params'] / 1e6:.2f}",
        zoo._g(row['model_flops']), f"{row['shape'][0]}x{row['shape'][1]}"]


def test_model_zoo_helpers(zoo):
    tbc = osp.join(ROOT, 'configs/tbc/retinanet_tiedresnet50_fpn_2x_coco.py')
    assert zoo.upstream_config(tbc) == 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
    assert osp.isfile(zoo.resolve(zoo.upstream_config(tbc)))
    assert zoo.upstream_config(osp.join(ROOT, 'configs/demo/'
                                        'retinanet_r18-tiny_fpn_1x_occshapes.py')) is None
    assert zoo.describe_backbone(dict(type='DRResNet', depth=50, drconv=dict(region_num=4))) == \
        'DRResNet-50 (m=4)'
    assert zoo.describe_backbone(dict(type='TiedResNet', depth=50, arch='S')) == 'TiedResNet-50 S'
    assert zoo.describe_backbone(dict(type='ResNet', depth=50, dcn=dict(type='TBC', B=2),
                                      stage_with_dcn=(False, True, True, True))) == \
        'ResNet-50 (TBC 3x3 in c3/c4/c5)'  # the conv in ResNet's dcn slot
    assert zoo.paper_key(dict(type='SKNet', depth=50)) in zoo.PAPER
    assert (zoo._g(4.111e9), zoo._g(46.2e6)) == ('4.11', '0.046')  # MAdds of the small models
    assert zoo.paper_key(dict(type='TiedResNeXt', depth=50)) in zoo.PAPER
    assert zoo.paper_key(dict(type='ResNet', depth=50, plugins=[dict(cfg=dict(type='TiedSE'))])) \
        not in zoo.PAPER


def test_model_zoo_follows_mmpretrain_configs(zoo):
    """ImageNet configs: the upstream config of the same mmpretrain fragments, the test crop."""
    from mmengine.config import Config
    imagenet = osp.join(ROOT, 'configs/imagenet')
    assert zoo.upstream_config(osp.join(imagenet, 'tiedresnet101_8xb32_in1k.py')) == \
        'mmpretrain::resnet/resnet50_8xb32_in1k.py'  # through ./tiedresnet50's four fragments
    assert zoo.config_of_fragments('mmpretrain', ['_base_/models/resnet50.py']) is None
    assert zoo.upstream_config(osp.join(imagenet, 'dr-shufflenetv2-0.5x_16xb64_in1k.py')) == \
        'mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'
    assert zoo.test_shape(Config.fromfile(osp.join(imagenet, 'sknet50_8xb32_in1k.py'))) == \
        (224, 224)
    assert zoo.test_shape(Config.fromfile(osp.join(
        ROOT, 'configs/shapecls/tiedresnet-tiny_shapecls.py'))) == (64, 64)
    cfg = Config(dict(default_scope='mmpretrain', test_dataloader=dict(dataset=dict(
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))))
    with pytest.raises(ValueError, match='no Resize step'):
        zoo.test_shape(cfg)


def test_study_page_holds_the_generated_table():
    with open(osp.join(ROOT, 'docs', 'occlusion_study.md')) as f:
        page = f.read()
    block = page.split('<!-- study:begin -->\n')[1].split('<!-- study:end -->')[0]
    study = load_tool('tools/study/occlusion_study.py')
    expected = set()
    for config in study.parse_args([]).configs:
        detector, backbone = study.split_name(config)
        for iou_type in ('bbox', 'segm') if detector == 'mask-rcnn' else ('bbox', ):
            expected.add((detector, iou_type, backbone))
    rows = {tuple(c.strip() for c in line.split('|')[1:4]) for line in block.splitlines()
            if line.startswith('| retinanet') or line.startswith('| mask-rcnn')}
    assert rows == expected
    assert osp.isfile(osp.join(ROOT, 'docs', 'study', 'occlusion_study.png'))
    assert page.split('<!-- study:end -->')[1].strip(), 'the discussion follows the table'
