"""Every TBC config builds in its scope and runs a forward pass on a tiny image. The demo RetinaNet
with the tiny TiedResNet trains and evaluates through tools/train.py in test_e2e_detection.py."""
import glob
import json
import os.path as osp

import pytest
import torch

from conftest import ROOT, load_plugin_config, tensor_forward
from plugin.analysis.complexity import build_model, find_backbone
from plugin.layers import TiedGCB, TiedSE

DEMO = osp.join(ROOT, 'configs', 'demo', 'retinanet_tiedresnet-tiny_fpn_1x_occshapes.py')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'tbc', '*.py'))) + [DEMO]
BACKBONES = [('tiedresnext', 'TiedResNeXt'), ('tiedresnest', 'TiedResNeSt'),
             ('tiedsenet', 'TiedResNet'), ('tiedresnet', 'TiedResNet'), ('r50', 'ResNet')]
_outputs = {}  # 1x and 2x configs share their model: build and run each model once


def tiny_forward(cfg):
    scope = cfg.get('default_scope', 'mmdet')
    rpn = cfg.model.get('test_cfg', {}).get('rpn')
    if rpn:  # a few proposals keep the (cascade) RoI and mask heads cheap
        rpn.update(nms_pre=64, max_per_img=8)
    model = build_model(cfg)
    leaves = tensor_forward(model, scope)
    return type(find_backbone(model)).__name__, leaves


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_runs_forward(path):
    cfg, scope = load_plugin_config(path)
    if '_2x_' in path:  # the TBC paper's detection schedule
        assert cfg.train_cfg.max_epochs == 24
        assert cfg.param_scheduler[1].milestones == [16, 22]
    key = json.dumps(dict(scope=scope, model=cfg.model.to_dict()), sort_keys=True, default=str)
    if key not in _outputs:
        _outputs[key] = tiny_forward(cfg)
    backbone, leaves = _outputs[key]
    name = osp.basename(path).split('_')[1]
    assert backbone == next(cls for tag, cls in BACKBONES if name.startswith(tag))
    assert leaves and all(torch.isfinite(t).all() for t in leaves)


@pytest.mark.parametrize('name, layer, count, check', [
    ('mask-rcnn_tiedsenet50_fpn_1x_coco', TiedSE, 3 + 4 + 6 + 3,  # every block
     lambda m: m.fc1.B == 8 and m.fc1.out_features == m.in_channels // 16),
    ('mask-rcnn_r50-tiedgcb-r4-b4-c3-c5_fpn_1x_coco', TiedGCB, 4 + 6 + 3,  # stages c3-c5
     lambda m: m.B == 4 and m.planes == m.in_channels // 4),
])
def test_tiedsenet_and_the_papers_tiedgcb_configs(name, layer, count, check):
    cfg, _ = load_plugin_config(osp.join(ROOT, 'configs', 'tbc', name + '.py'))
    backbone = find_backbone(build_model(cfg))
    blocks = [m for m in backbone.modules() if isinstance(m, layer)]
    assert len(blocks) == count and all(map(check, blocks))
    if name.startswith('mask-rcnn_tiedsenet'):
        assert type(backbone).__name__ == 'TiedResNet' and backbone.mixer == 'concat-conv'
