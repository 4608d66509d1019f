"""Every config whose BN layers train without SyncBN averages their buffers over the processes
before validation and saving (issue 15, item 3): mmengine's ``SyncBuffersHook`` in an epoch-based
loop, ``IterSyncBuffersHook`` in an iteration-based one (its checkpoint is saved before the
validation). Otherwise each rank validates with its own running statistics and rank 0's are
saved: validation and a test of the checkpoint disagree (tests/test_ddp_validation.py)."""
import copy
import glob
import os.path as osp

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import DEMO_CFG, ROOT, load_plugin_config
from plugin.analysis.complexity import build_model

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p.split(osp.sep))


def plain_bn_in_training(cfg):
    """Names of the plain (not Sync) BN layers that update running statistics in ``train()``."""
    try:
        with torch.device('meta'):  # fast: no memory, no initialisation
            model = build_model(copy.deepcopy(cfg))
    except RuntimeError:  # a module that reads a tensor's value while built
        model = build_model(copy.deepcopy(cfg))
    model.train()
    return [name for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and not isinstance(m, nn.SyncBatchNorm) and m.training
            and m.track_running_stats]


def required_hook(cfg):
    loop = cfg.train_cfg.get('type', 'EpochBasedTrainLoop')
    return 'IterSyncBuffersHook' if 'Iter' in loop else 'SyncBuffersHook'


def test_the_check_sees_trained_bn():
    cfg, _ = load_plugin_config(DEMO_CFG)
    assert 'backbone.layer1.0.bn1' in plain_bn_in_training(cfg)
    cfg.model.backbone.norm_eval = True
    assert plain_bn_in_training(cfg) == []  # RetinaNet's FPN and head have no BN


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def test_trained_bn_has_its_buffers_synced(path):
    cfg, _ = load_plugin_config(path)  # mmdet configs: OcclusionEvalHook still in custom_hooks
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    if required_hook(cfg) in hooks:
        return
    trained = plain_bn_in_training(cfg)
    assert not trained, (f'{osp.basename(path)} trains plain BN ({trained[0]}, ...) without '
                         f'{required_hook(cfg)} in custom_hooks (or SyncBN)')
