"""Configs that put our conv layers into mmdet's own ResNet-50 (issue 18, item 6).

mmdet's ``ResNet`` has two routes for a conv config. ``conv_cfg`` builds *every* conv (the 7x7 stem,
the 1x1s, the 3x3s, the downsample shortcuts); ``dcn`` with ``stage_with_dcn`` builds only the 3x3
``conv2`` of the Bottlenecks of the chosen stages (and refuses ``conv_cfg`` beside it). The configs
use the second: each builds through mmdet's registry, exactly the 13 ``conv2`` of stages 2-4 are
ours, a forward runs, and the torchvision ResNet-50 checkpoint of mmdet's base config loads with
exactly the keys we expect missing, unused or reshaped.
"""
import os.path as osp
import re

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.runner.checkpoint import load_state_dict
from torch import nn

from conftest import ROOT, load_plugin_config, tensor_forward
from plugin.analysis import build_model, find_backbone
from plugin.layers import DRConv2d, TiedBlockConv2d

R50_BLOCKS = (3, 4, 6, 3)
C3_C5 = {f'layer{s + 1}.{b}.conv2' for s in (1, 2, 3) for b in range(R50_BLOCKS[s])}
TBC = 'configs/tbc/retinanet_r50-tbc-b2-c3-c5_fpn_1x_coco.py'
DR = 'configs/drconv/retinanet_r50-drconv-c3-c5_fpn_1x_coco.py'
LAYERS = {TBC: (TiedBlockConv2d, lambda m: m.B == 2), DR: (DRConv2d, lambda m: m.region_num == 8)}


def build(path):
    cfg, scope = load_plugin_config(osp.join(ROOT, path))
    return build_model(cfg), scope


@pytest.fixture(scope='module')
def torchvision_resnet50(tmp_path_factory):
    """``(state_dict, path)`` of a checkpoint with the keys and shapes of
    ``torchvision://resnet50`` (random weights: nothing is downloaded)."""
    from torchvision.models import resnet50
    torch.manual_seed(0)
    state = resnet50(weights=None).state_dict()
    path = str(tmp_path_factory.mktemp('torchvision') / 'resnet50.pth')
    torch.save(state, path)
    return state, path


def config_backbone(path, checkpoint=None):
    """The config's backbone alone, built by mmdet's registry; with ``checkpoint``, its
    ``init_cfg`` (mmdet's ``torchvision://resnet50``) points there and it is initialised."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg, _ = load_plugin_config(osp.join(ROOT, path))
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='torchvision://resnet50')
    init_default_scope('mmdet')
    if checkpoint is None:
        return MODELS.build(cfg.model.backbone)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    return backbone


def load_report(module, state):
    """``(missing, unexpected, reshaped)`` key sets as mmengine's checkpoint loader (behind
    ``init_cfg=dict(type='Pretrained')``) reports them."""
    with pytest.raises(RuntimeError) as info:
        load_state_dict(module, state, strict=True)
    message = str(info.value)

    def listed(prefix):
        found = re.search(rf'^{prefix}: (.*)$', message, re.M)
        return set(found.group(1).split(', ')) if found else set()

    return (listed('missing keys in source state_dict'),
            listed('unexpected key in source state_dict'),
            set(re.findall(r'size mismatch for (\S+):', message)))


@pytest.mark.parametrize('path', [TBC, DR], ids=osp.basename)
def test_config_puts_our_conv_in_the_3x3_of_stages_2_to_4(path):
    model, scope = build(path)
    backbone = find_backbone(model)
    assert type(backbone) is ResNet  # mmdet's own, from the registry
    layer, check = LAYERS[path]
    ours = {name for name, m in backbone.named_modules() if isinstance(m, layer)}
    assert ours == C3_C5 and len(ours) == 13
    assert all(check(backbone.get_submodule(name)) for name in ours)
    plain = [n for n, m in backbone.named_modules()
             if type(m) is nn.Conv2d and n.endswith('.conv2')]
    assert sorted(plain) == [f'layer1.{b}.conv2' for b in range(3)]  # stage 1 stays plain
    leaves = tensor_forward(model, scope)
    assert leaves and all(torch.isfinite(t).all() for t in leaves)


def test_tbc_config_loads_torchvision_resnet50_but_the_half_width_convs(torchvision_resnet50):
    state, path = torchvision_resnet50
    backbone = config_backbone(TBC, path)
    own = backbone.state_dict()
    loaded = [k for k in own if k in state and own[k].shape == state[k].shape]
    assert len(loaded) == len(own) - 13
    assert all(torch.equal(own[k], state[k]) for k in loaded)
    assert backbone.layer3[0].conv2.weight.shape == (128, 128, 3, 3)  # 256 channels, B=2
    missing, unexpected, reshaped = load_report(backbone, state)
    assert missing == set()  # no new key
    assert unexpected == {'fc.weight', 'fc.bias'}  # the classifier, as for plain ResNet-50
    assert reshaped == {f'{name}.weight' for name in C3_C5}


def test_drconv_config_loads_torchvision_resnet50_but_the_drconvs(torchvision_resnet50):
    state, path = torchvision_resnet50
    backbone = config_backbone(DR, path)
    own = backbone.state_dict()
    dr_keys = set(DRConv2d(64, 64, 3, padding=1, region_num=8).state_dict())
    assert dr_keys and 'weight' not in dr_keys  # the filters are generated
    new = {f'{name}.{key}' for name in C3_C5 for key in dr_keys}
    assert set(own) - set(state) == new
    assert all(torch.equal(own[k], state[k]) for k in own if k not in new)
    missing, unexpected, reshaped = load_report(backbone, state)
    assert missing == new
    assert unexpected == {'fc.weight', 'fc.bias'} | {f'{name}.weight' for name in C3_C5}
    assert reshaped == set()


def test_drconv_config_is_the_dr_resnet_config_through_mmdets_resnet():
    """Same parameters and checkpoint keys as DRResNet-50's config: a checkpoint of either loads
    into the other."""
    ours = config_backbone(DR).state_dict()
    dr_resnet = config_backbone('configs/drconv/retinanet_dr-r50_fpn_1x_coco.py')
    assert type(dr_resnet).__name__ == 'DRResNet'
    assert {k: v.shape for k, v in ours.items()} == {
        k: v.shape for k, v in dr_resnet.state_dict().items()}


def test_conv_cfg_reaches_every_conv_of_mmdets_resnet():
    """Why the configs use the dcn slot: ``conv_cfg`` builds the stem too, whose 3 input channels
    do not split into B=2 blocks, and every 1x1 and shortcut conv."""
    with pytest.raises(ValueError, match='in_channels=3 is not divisible by B=2'):
        ResNet(depth=50, conv_cfg=dict(type='TBC', B=2))
    convs = [m for m in ResNet(depth=50, conv_cfg=dict(type='TBC', B=1)).modules()
             if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 3 * sum(R50_BLOCKS) + 4  # stem, 3 per block, 4 shortcuts
    assert all(isinstance(m, TiedBlockConv2d) for m in convs)
    with pytest.raises(AssertionError, match='conv_cfg must be None for DCN'):
        ResNet(depth=50, conv_cfg=dict(type='TBC', B=1), dcn=dict(type='TBC', B=2),
               stage_with_dcn=(False, True, True, True))
