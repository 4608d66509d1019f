"""Every TBC config builds in its scope and runs a forward pass on a tiny image. The demo RetinaNet
with the tiny TiedResNet trains and evaluates through tools/train.py in test_e2e_detection.py."""
import glob
import json
import os.path as osp

import pytest
import torch

from conftest import ROOT, load_plugin_config, tensor_forward
from plugin.analysis.complexity import build_model, find_backbone

DEMO = osp.join(ROOT, 'configs', 'demo', 'retinanet_tiedresnet-tiny_fpn_1x_occshapes.py')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'tbc', '*.py'))) + [DEMO]
BACKBONES = [('tiedresnext', 'TiedResNeXt'), ('tiedresnest', 'TiedResNeSt'),
             ('tiedresnet', 'TiedResNet'), ('r50', 'ResNet')]
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
    if '_2x_' in path:
        assert cfg.train_cfg.max_epochs == 24
    key = json.dumps(dict(scope=scope, model=cfg.model.to_dict()), sort_keys=True, default=str)
    if key not in _outputs:
        _outputs[key] = tiny_forward(cfg)
    backbone, leaves = _outputs[key]
    name = osp.basename(path).split('_')[1]
    assert backbone == next(cls for tag, cls in BACKBONES if name.startswith(tag))
    assert leaves and all(torch.isfinite(t).all() for t in leaves)

