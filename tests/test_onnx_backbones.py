"""The backbone of every family (and the TiedGCB neck) at tiny size exports to ONNX with dynamic
batch and image size, and onnxruntime matches PyTorch in eval mode (fp32, max abs difference
<= 1e-4) at the export size and at another size."""
import pytest
import torch
from mmengine.registry import init_default_scope

import plugin  # noqa: F401
from plugin.backbones import (DRMobileNetV2, DRResNet, DRShuffleNetV2, DSCResNet, SKNet,
                              TiedResNeXt, TiedResNet)
from plugin.necks import TiedGCBNeck
from test_onnx_layers import assert_exports, randomise, seeded

BACKBONES = {
    'TiedResNet': lambda: TiedResNet(14, arch='tiny', base_channels=16),
    'TiedResNeXt-TiedSE': lambda: TiedResNeXt(
        14, arch=dict(splits=2, base_width=8, groups=2), base_channels=16,
        plugins=[dict(cfg=dict(type='TiedSE', B=2, reduction=4), position='after_conv3')]),
    'DRResNet': lambda: DRResNet(18, base_channels=8, drconv=dict(region_num=4),
                                 stage_with_drconv=(False, True, False, False)),
    'DRShuffleNetV2': lambda: DRShuffleNetV2(widen_factor=0.5, out_indices=(0, 1),
                                             drconv=dict(region_num=4)),
    'DRMobileNetV2': lambda: DRMobileNetV2(widen_factor=0.5, out_indices=(0, 1),
                                           drconv=dict(region_num=4)),
    'DSCResNet': lambda: DSCResNet(18, base_channels=16),
    'SKNet': lambda: SKNet(depth=14, groups=8, base_width=4, base_channels=16),
}


@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_exports_with_dynamic_shapes(name, tmp_path):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    net = BACKBONES[name]()
    net.init_weights()
    randomise(net)
    assert_exports(net, seeded(1, 3, 48, 48), tmp_path / f'{name}.onnx',
                   seeded(2, 3, 32, 64, seed=1), dynamic=True)


def test_tied_gcb_neck_exports_with_dynamic_shapes(tmp_path):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    neck = randomise(TiedGCBNeck(B=4, ratio=1 / 4, neck=dict(
        type='FPN', in_channels=[8, 16, 32], out_channels=16, num_outs=4)))
    feats = [seeded(1, c, s, s, seed=i) for i, (c, s) in enumerate([(8, 16), (16, 8), (32, 4)])]
    other = [seeded(2, c, s, 2 * s, seed=i) for i, (c, s) in enumerate([(8, 12), (16, 6),
                                                                          (32, 3)])]
    assert_exports(neck, (feats, ), tmp_path / 'neck.onnx', (other, ), dynamic=True)
