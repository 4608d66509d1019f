"""Norms and initialisation of the configs.

1. Every config whose BN layers train without SyncBN averages their buffers over the processes
   before validation and saving (issue 15, item 3): mmengine's ``SyncBuffersHook`` in an
   epoch-based loop, ``IterSyncBuffersHook`` in an iteration-based one (its checkpoint is saved
   before the validation). Otherwise each rank validates with its own running statistics and rank
   0's are saved: validation and a test of the checkpoint disagree (tests/test_ddp_validation.py).
   A config whose BN does not train (frozen, or SyncBN) carries no such hook.
2. The COCO, ADE20K and Cityscapes configs of the four families start where the papers start
   (issue 16, step 5): from the ImageNet weights of ``WEIGHTS``, with mmdet's fine-tuning norms
   (stem and stage 1 frozen, BN frozen) or, in mmseg, SyncBN in training as mmseg's configs. The
   ``*-scratch_*`` configs follow mmdet's from-scratch recipe (``mmdet::scratch/``): no
   pretrained weights, every stage trained, GN or SyncBN in the backbone, neck and heads, 6x.
3. A missing local checkpoint of those configs names the ImageNet config that writes it, and
   docs/model_zoo.md says where each config starts.
"""
import copy
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import DEMO_CFG, ROOT, load_plugin_config
from plugin.analysis.complexity import build_model

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p.split(osp.sep))
TASK_CONFIGS = sorted(p for family in ('tbc', 'sk', 'drconv', 'dsc')
                      for p in glob.glob(osp.join(ROOT, 'configs', family, '*.py'))
                      if 'occshapes' not in osp.basename(p))
SCRATCH = [p for p in TASK_CONFIGS if '-scratch_' in osp.basename(p)]
TORCHVISION, V1C = 'torchvision://resnet50', 'open-mmlab://resnet50_v1c'


def ours(name: str, epochs: int = 100) -> str:
    """What ``tools/train.py configs/imagenet/{name}.py`` writes at its last epoch."""
    return f'work_dirs/{name}/epoch_{epochs}.pth'


# (backbone type, depth or width, variant) -> the ImageNet weights its task configs start from
WEIGHTS = {
    ('TiedResNet', 50, 'base'): ours('tiedresnet50_8xb32_in1k'),
    ('TiedResNet', 50, 'S'): ours('tiedresnet50-s_8xb32_in1k'),
    ('TiedResNet', 101, 'base'): ours('tiedresnet101_8xb32_in1k'),
    ('TiedResNeXt', 50, 'base'): ours('tiedresnext50_8xb32_in1k'),
    ('TiedResNet', 50, 'TiedSE'): ours('tiedsenet50_8xb32_in1k'),
    ('TiedResNeSt', 50, None): ours('tiedresnest50_8xb32_in1k'),
    ('SKNet', 50, None): 'timm://skresnext50_32x4d',  # the paper's weights, as timm publishes them
    ('SKNet', 101, None): ours('sknet101_8xb32_in1k'),
    ('DRShuffleNetV2', 1.0, 'drconv'): ours('dr-shufflenetv2-1x_16xb64_in1k', 300),
    ('DRShuffleNetV2', 0.5, 'drconv'): ours('dr-shufflenetv2-0.5x_16xb64_in1k', 300),
    ('DRShuffleNetV2', 1.0, None): ours('shufflenetv2-1x_16xb64_in1k', 300),
    ('DRShuffleNetV2', 0.5, None): ours('shufflenetv2-0.5x_16xb64_in1k', 300),
    ('DRMobileNetV2', 1.0, 'drconv'): ours('dr-mobilenetv2_8xb32_in1k', 300),
    ('DRMobileNetV2', 1.0, None): 'open-mmlab://mmdet/mobilenet_v2',  # mmdet's MobileNetV2
    ('DRResNet', 50, 'drconv'): TORCHVISION,  # everything but the DRConvs loads
    ('DSCResNet', 50, None): TORCHVISION,
    ('ResNet', 50, None): TORCHVISION,
    ('ResNet', 50, 'TiedSE'): TORCHVISION,
    ('ResNet', 50, 'TiedGCB'): TORCHVISION,
    ('DRResNet', 50, 'drconv V1c'): V1C,
    ('DSCResNet', 50, 'V1c'): V1C,
}


def _id(path):
    return osp.relpath(path, osp.join(ROOT, 'configs'))


def plain_bn_in_training(cfg):
    """Names of the plain (not Sync) BN layers that update running statistics in ``train()``."""
    model = _build(cfg)
    model.train()
    return [name for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and not isinstance(m, nn.SyncBatchNorm) and m.training
            and m.track_running_stats]


def _build(cfg):
    try:
        with torch.device('meta'):  # fast: no memory, no initialisation
            return build_model(copy.deepcopy(cfg))
    except RuntimeError:  # a module that reads a tensor's value while built
        return build_model(copy.deepcopy(cfg))


def required_hook(cfg):
    loop = cfg.train_cfg.get('type', 'EpochBasedTrainLoop')
    return 'IterSyncBuffersHook' if 'Iter' in loop else 'SyncBuffersHook'


def test_the_check_sees_trained_bn():
    cfg, _ = load_plugin_config(DEMO_CFG)
    assert 'backbone.layer1.0.bn1' in plain_bn_in_training(cfg)
    cfg.model.backbone.norm_eval = True
    assert plain_bn_in_training(cfg) == []  # RetinaNet's FPN and head have no BN


@pytest.mark.parametrize('path', CONFIGS, ids=_id)
def test_trained_bn_has_its_buffers_synced(path):
    cfg, _ = load_plugin_config(path)  # mmdet configs: OcclusionEvalHook still in custom_hooks
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    trained = plain_bn_in_training(cfg)
    if required_hook(cfg) in hooks:
        assert trained, f'{osp.basename(path)}: {required_hook(cfg)} but no BN trains'
    else:
        assert not trained, (f'{osp.basename(path)} trains plain BN ({trained[0]}, ...) without '
                             f'{required_hook(cfg)} in custom_hooks (or SyncBN)')


def _inner(cfg):
    """The detector or segmentor of a config (inside a DSC wrapper too)."""
    return cfg.model.get('detector') or cfg.model.get('segmentor') or cfg.model


def variant(backbone) -> tuple:
    """The key of ``WEIGHTS`` for a backbone config."""
    if backbone.get('plugins'):
        tag = '+'.join(p['cfg']['type'] for p in backbone.plugins)
    elif 'drconv' in backbone:
        tag = 'drconv' if backbone.drconv else None
    else:
        tag = backbone.get('arch')
    if backbone.get('deep_stem'):
        tag = f'{tag} V1c' if tag else 'V1c'
    return backbone.type, backbone.get('depth', backbone.get('widen_factor', 1.0)), tag


def start(model) -> tuple:
    """``(checkpoint, prefix)`` the backbone of a model config loads (mmseg: ``pretrained``)."""
    init = model.backbone.get('init_cfg') or {}
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        return init.checkpoint, init.get('prefix')
    return model.get('pretrained'), None


@pytest.mark.parametrize('path', [p for p in TASK_CONFIGS if p not in SCRATCH], ids=_id)
def test_task_config_starts_from_imagenet_weights(path):
    cfg, scope = load_plugin_config(path)
    model = _inner(cfg)
    backbone = model.backbone
    checkpoint, prefix = start(model)
    assert checkpoint == WEIGHTS[variant(backbone)]
    # an mmpretrain checkpoint holds the classifier: its backbone.* keys are ours
    assert prefix == ('backbone.' if checkpoint.startswith('work_dirs/') else None)
    if scope == 'mmseg':  # mmseg fine-tunes every BN, synchronised
        assert backbone.norm_cfg.type == 'SyncBN' and backbone.norm_eval is False
    else:
        assert backbone.frozen_stages == 1 and backbone.norm_eval is True
        assert backbone.norm_cfg == dict(type='BN', requires_grad=True)


def test_each_family_keeps_one_scratch_recipe():
    names = [osp.basename(p) for p in SCRATCH]
    assert {_id(p).split('/')[0] for p in SCRATCH} == {'tbc', 'sk', 'drconv'}
    assert all(re.fullmatch(r'mask-rcnn_[\w.-]+-scratch_fpn_(gn|syncbn)-all_6x_coco\.py', n)
               for n in names), names


@pytest.mark.parametrize('path', SCRATCH, ids=_id)
def test_scratch_config_follows_mmdets_recipe(path):
    cfg, _ = load_plugin_config(path)
    backbone = cfg.model.backbone
    assert backbone.get('init_cfg') is None and cfg.model.get('pretrained') is None
    assert backbone.frozen_stages == -1 and backbone.norm_eval is False
    assert cfg.train_cfg.max_epochs == 73  # mmdet's 6x
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    norm = nn.GroupNorm if '_gn-all_' in path else nn.SyncBatchNorm
    norms = {name: m for name, m in _build(cfg).named_modules()
             if isinstance(m, (_BatchNorm, nn.GroupNorm))}
    other = sorted(name for name, m in norms.items() if not isinstance(m, norm))
    assert not other, other[:5]
    for part in ('backbone.', 'neck.', 'roi_head.bbox_head.', 'roi_head.mask_head.'):
        assert any(name.startswith(part) for name in norms), f'no {norm.__name__} in {part}'


LOCAL = sorted({c for c in WEIGHTS.values() if c.startswith('work_dirs/')})


@pytest.mark.parametrize('checkpoint', LOCAL)
def test_missing_imagenet_checkpoint_names_its_config(checkpoint, tmp_path, monkeypatch):
    """A config's backbone, ``init_weights()`` with no checkpoint on disk: the error names the
    ImageNet config that writes it."""
    from mmengine.registry import MODELS

    from plugin.utils import CheckpointError
    path = next(p for p in TASK_CONFIGS if start(_inner(Config.fromfile(p)))[0] == checkpoint)
    cfg, _ = load_plugin_config(path)
    config = f"configs/imagenet/{checkpoint.split('/')[1]}.py"
    assert osp.isfile(osp.join(ROOT, config)), f'{_id(path)} starts from a missing {config}'
    backbone = MODELS.build(_inner(cfg).backbone)
    monkeypatch.chdir(tmp_path)  # no work_dirs/ here, even where a run has written one
    with pytest.raises(CheckpointError, match=re.escape(config)):
        backbone.init_weights()



def test_model_zoo_says_where_each_task_config_starts():
    from test_docs import zoo_rows
    rows = zoo_rows()
    for path in TASK_CONFIGS:
        expected = 'scratch' if path in SCRATCH else WEIGHTS[variant(
            _inner(Config.fromfile(path)).backbone)]
        if expected.startswith('work_dirs/'):
            expected = expected.split('/')[1]  # the ImageNet config that writes it
        name = osp.basename(path)[:-3]
        assert rows[name]['backbone starts from'] == f'`{expected}`', name
