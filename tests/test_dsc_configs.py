"""configs/dsc: every config builds and runs forward; the tiny DSC detector with the allocation
loss trains through tools/train.py; tools/analysis/dsc_maps.py draws its maps."""
import glob
import json
import os.path as osp

import pytest
import torch

from conftest import ROOT, data_options, load_plugin_config, run_tool, tensor_forward
from plugin.analysis import build_model
from plugin.backbones import DSCResNet
from plugin.models import DSCDetector, DSCSegmentor

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'dsc', '*.py')))
TINY = osp.join(ROOT, 'configs', 'dsc', 'retinanet_dsc-r18-tiny_fpn_dscloss_1x_occshapes.py')
BUCKETS = ('0-0.2', '0.2-0.4', '0.4-0.6', '0.6-0.8', '0.8-inf')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_runs_forward(path):
    cfg, scope = load_plugin_config(path)
    name = osp.basename(path)
    model = build_model(cfg)
    if 'dscloss' in name:
        assert isinstance(model, DSCSegmentor if scope == 'mmseg' else DSCDetector)
        assert model.allocation_loss.target == (
            None if 'tiny' in name and 'edit' in name else 'boundary' if scope == 'mmseg' else
            'masks' if 'mask-rcnn' in name else 'boxes')
    assert isinstance(model.backbone, DSCResNet)
    assert model.backbone.depth == (18 if 'r18' in name else 50)
    leaves = tensor_forward(model, scope)
    assert leaves and all(torch.isfinite(t).all() for t in leaves)


@pytest.fixture(scope='module')
def trained(shapes_data, tmp_path_factory):
    """One epoch of the tiny DSC RetinaNet with the allocation loss; val runs the occlusion hook."""
    work_dir = str(tmp_path_factory.mktemp('dsc'))
    run_tool([osp.join(ROOT, 'tools', 'train.py'), TINY, '--work-dir', work_dir,
              '--cfg-options', *data_options(shapes_data['root'])])
    return work_dir


@pytest.mark.e2e
def test_tiny_dsc_detector_trains_with_the_allocation_loss(trained):
    (scalars, ) = glob.glob(osp.join(trained, '*', 'vis_data', 'scalars.json'))
    lines = [json.loads(line) for line in open(scalars)]
    train = [s for s in lines if 'loss' in s]
    assert len(train) == 6  # 24 images / batch 4
    for key in ('loss', 'loss_cls', 'loss_bbox', 'loss_dsc_alloc', 'loss_dsc_cov'):
        assert all(torch.isfinite(torch.tensor(s[key])) for s in train), key
    assert sum(lines[-1][f'occlusion/{b}/num_images'] for b in BUCKETS) == 10
    state = torch.load(osp.join(trained, 'epoch_1.pth'), map_location='cpu')['state_dict']
    offsets = [v for k, v in state.items() if k.endswith('conv_offset.weight')]
    assert len(offsets) == 3 and all(v.abs().sum() > 0 for v in offsets)  # they learned
    assert 'detector.backbone.layer2.0.downsample.0.weight' in state


@pytest.mark.e2e
def test_maps_tool_draws_one_panel_per_layer_and_the_difference(trained, shapes_data, tmp_path):
    image = sorted(glob.glob(osp.join(shapes_data['root'], 'images', 'val', '*.png')))[0]
    proc = run_tool([osp.join(ROOT, 'tools', 'analysis', 'dsc_maps.py'), TINY,
                     osp.join(trained, 'epoch_1.pth'), image, '--out', str(tmp_path),
                     '--compare', 'none', '--repeat', '1'])
    assert '3 DSC layers' in proc.stdout
    report = json.load(open(tmp_path / 'dsc_maps.json'))
    assert [layer['name'] for layer in report['layers']] == [
        f'layer{i}.0.conv1' for i in (2, 3, 4)]
    assert [layer['stride'] for layer in report['layers']] == [8, 16, 32]
    assert report['input_shape'] == [256, 256]
    assert all(layer['mean_displacement_px'] > 0 for layer in report['layers'])
    assert all(layer['max_displacement_px'] == 0 for layer in report['compare']['layers'])
    assert report['cost']['forward_ms'] > 0 and report['cost']['ratio'] > 0
    for png in ('dsc_maps.png', 'dsc_maps_diff.png'):
        assert osp.getsize(tmp_path / png) > 20_000
