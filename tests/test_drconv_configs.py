"""configs/drconv: every config builds and runs forward; a tiny DR detector trains through
tools/train.py and tools/analysis/vis_drconv_regions.py draws its regions."""
import glob
import json
import os
import os.path as osp

import pytest
import torch
from mmdet.models.backbones import ResNet

from conftest import ROOT, data_options, load_plugin_config, run_tool, tensor_forward
from plugin.analysis import build_model, find_backbone
from plugin.backbones import DRMobileNetV2, DRResNet, DRShuffleNetV2
from plugin.layers import DRConv2d

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'drconv', '*.py')))
BACKBONES = {'dr-r': DRResNet, 'shufflenetv2': DRShuffleNetV2, 'mobilenetv2': DRMobileNetV2,
             'r50-drconv': ResNet}  # mmdet's own ResNet-50, DRConv through its dcn slot


def test_every_algorithm_has_each_backbone():
    names = {osp.basename(p) for p in CONFIGS}
    for algorithm in ('retinanet', 'mask-rcnn', 'cascade-rcnn'):
        for backbone in ('dr-r50', 'dr-shufflenetv2-1x', 'dr-mobilenetv2'):
            assert f'{algorithm}_{backbone}_fpn_1x_coco.py' in names
    assert any(n.startswith('upernet_dr-r50') for n in names)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_runs_forward(path):
    cfg, scope = load_plugin_config(path)
    name = osp.basename(path)
    model = build_model(cfg)
    backbone = find_backbone(model)
    (cls, ) = [c for key, c in BACKBONES.items() if key in name]
    assert type(backbone) is cls
    drconvs = [m for m in backbone.modules() if isinstance(m, DRConv2d)]
    assert bool(drconvs) == ('_dr-' in name or '-drconv' in name)
    assert all(m.region_num == 8 for m in drconvs)
    if 'shufflenetv2' in name:
        assert backbone.out_channels == model.neck.in_channels
    leaves = tensor_forward(model, scope)
    assert leaves and all(torch.isfinite(t).all() for t in leaves)


@pytest.mark.e2e
def test_tiny_dr_detector_trains_and_its_regions_are_drawn(shapes_data, tmp_path):
    cfg = osp.join(ROOT, 'configs', 'drconv', 'retinanet_dr-r18-tiny_fpn_1x_occshapes.py')
    work_dir = str(tmp_path / 'train')
    run_tool([osp.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', work_dir,
              '--cfg-options', *data_options(shapes_data['root'])])
    (scalars, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    lines = [json.loads(line) for line in open(scalars)]
    losses = torch.tensor([s['loss'] for s in lines if 'loss' in s])
    assert len(losses) == 6 and torch.isfinite(losses).all()  # 24 images / batch 4
    assert any(k.startswith('occlusion/') for k in lines[-1])
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert {'backbone.layer2.0.conv1.guide.weight', 'backbone.layer4.1.conv2.generator.weight',
            'backbone.layer4.1.conv2.generator.reduce.weight'} <= set(state)

    image = sorted(glob.glob(osp.join(shapes_data['root'], 'images', 'val', '*')))[0]
    out_dir = str(tmp_path / 'regions')
    proc = run_tool([osp.join(ROOT, 'tools', 'analysis', 'vis_drconv_regions.py'), cfg, ckpt,
                     image, '--out', out_dir])
    pngs = sorted(os.listdir(out_dir))
    assert len(pngs) == 12 + 1 and 'grid.png' in pngs  # 12 DRConvs in DR-ResNet-18 stages 2-4
    assert pngs[0].startswith('00_backbone.layer2.0.conv1')
    assert '12 DRConv layers drawn' in proc.stdout
    import matplotlib.pyplot as plt
    first = plt.imread(osp.join(out_dir, pngs[0]))
    assert first.shape[:2] == plt.imread(image).shape[:2]  # drawn over the original image
