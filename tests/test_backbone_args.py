"""Per-stage arguments of the ResNet-style backbones follow ``num_stages`` (mmdet's C4 configs use
``num_stages=3``); a wrong one is a ValueError naming it; blocks refuse a ``dcn`` they drop."""
import os.path as osp

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import plugin  # noqa: F401  (registers the backbones)
from plugin.backbones import DRBasicBlock, DRBottleneck, DSCBottleneck, SKBottleneck

SMALL = {
    'DRResNet': dict(depth=18, base_channels=8, drconv=dict(region_num=2)),
    'DSCResNet': dict(depth=18, base_channels=8),
    'TiedResNet': dict(depth=14, arch='tiny', base_channels=16),
    'SKNet': dict(depth=14, groups=4, base_width=4, base_channels=16),
    'TiedResNeSt': dict(depth=50, base_channels=16, stem_channels=16),
}
OWN = {'DRResNet': 'stage_with_drconv', 'DSCResNet': 'stage_with_dsc', 'TiedResNet': 'tied_B',
       'TiedResNeSt': 'tied_B'}
FOUR = {'stage_with_drconv': (False, True, True, True), 'stage_with_dsc': (False, True, True, True),
        'tied_B': (1, 2, 4, 8)}
DCN = dict(type='DCN', deform_groups=1)


def build(type, **kwargs):
    init_default_scope('mmdet')
    return MODELS.build(dict(type=type, **kwargs))


def seeded(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize('type', sorted(SMALL))
def test_three_stages_by_num_stages_alone(type):
    """num_stages=3 needs no other argument, and its stages are those of the 4-stage network."""
    torch.manual_seed(0)
    four = build(type, **SMALL[type], out_indices=(2, ))
    three = build(type, **SMALL[type], num_stages=3, out_indices=(2, ))
    assert not hasattr(three, 'layer4') and three.strides == (1, 2, 2)
    three.load_state_dict({k: v for k, v in four.state_dict().items()
                           if not k.startswith('layer4.')})
    three.eval(), four.eval()  # mmdet's ResNet.train returns None: no chaining
    x = seeded(1, 3, 64, 64)
    with torch.no_grad():
        (out3, ), (out4, ) = three(x), four(x)
    assert out3.shape[-2:] == (4, 4)
    torch.testing.assert_close(out3, out4)


def c4_backbone():
    """The backbone of mmdet's Faster R-CNN C4 config (num_stages=3, out_indices=(2,))."""
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
                    'faster-rcnn_r50-caffe-c4.py')
    backbone = Config.fromfile(path).model.backbone.to_dict()
    assert backbone['num_stages'] == 3 and backbone['out_indices'] == (2, )
    return {k: v for k, v in backbone.items() if k not in ('type', 'init_cfg')}


@pytest.mark.parametrize('type', ['DRResNet', 'DSCResNet', 'TiedResNet', 'SKNet'])
def test_mmdet_c4_backbone_swaps_in(type):
    model = build(type, **c4_backbone())
    model.train()
    outs = model(seeded(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 1024, 4, 4)]
    if type in OWN:
        assert len(getattr(model, OWN[type])) == 3


@pytest.mark.parametrize('type', sorted(SMALL))
@pytest.mark.parametrize('num_stages', [0, 5, 2.0])
def test_num_stages_out_of_range_names_num_stages(type, num_stages):
    with pytest.raises(ValueError, match=rf'{type}: num_stages must be an int in 1\.\.4, got '
                       rf'{num_stages}'):
        build(type, **SMALL[type], num_stages=num_stages)


@pytest.mark.parametrize('type', sorted(set(SMALL) - {'TiedResNeSt'}))
def test_an_unknown_depth_names_the_backbone_and_its_depths(type):
    kwargs = dict(SMALL[type], depth=42)
    with pytest.raises(ValueError, match=rf'{type}: depth must be one of \[.*50.*\], got 42'):
        build(type, **kwargs)


@pytest.mark.parametrize('type', sorted(SMALL))
def test_a_per_stage_argument_of_the_wrong_length_names_it(type):
    for arg, value in [('strides', (1, 2, 2, 2)), ('dilations', (1, 1)),
                       ('stage_with_dcn', (False, ) * 4)]:
        with pytest.raises(ValueError, match=rf'{type}: {arg}=\(.*\) needs one entry per stage '
                           r'\(num_stages=3\)'):
            build(type, **SMALL[type], num_stages=3, **{arg: value})
    if type in OWN:
        with pytest.raises(ValueError, match=rf'{type}: {OWN[type]}=\(.*\) needs one entry per '
                           r'stage \(num_stages=3\)'):
            build(type, **SMALL[type], num_stages=3, **{OWN[type]: FOUR[OWN[type]]})
    with pytest.raises(ValueError, match=rf'{type}: out_indices=\(1, 3\) must index stages '
                       r'0\.\.2 \(num_stages=3\)'):
        build(type, **SMALL[type], num_stages=3, out_indices=(1, 3))
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1 / 4), position='after_conv3',
                    stages=(False, True, True, True))]
    with pytest.raises(ValueError, match=rf'{type}: plugins\[0\]\.stages=\(.*\) needs one entry '
                       r'per stage \(num_stages=3\)'):
        build(type, **SMALL[type], num_stages=3, plugins=plugins)


@pytest.mark.parametrize('make, match', [
    (lambda: DRBottleneck(64, 16, drconv=dict(region_num=2), dcn=DCN), 'DRBottleneck: dcn'),
    (lambda: DRBasicBlock(16, 16, dcn=DCN), 'DRBasicBlock: dcn'),
    (lambda: SKBottleneck(64, 16, groups=4, base_width=4, base_channels=16, dcn=DCN),
     'SKBottleneck: dcn'),
    (lambda: DSCBottleneck(64, 16, stride=2, dsc=dict(type='DSC'), dcn=DCN),
     'DSCBottleneck: dcn'),
])
def test_blocks_refuse_a_dcn_they_would_drop(make, match):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match=match):
        make()


def test_dr_bottleneck_without_drconv_keeps_mmdet_dcn():
    from mmcv.ops import DeformConv2dPack
    init_default_scope('mmdet')
    assert isinstance(DRBottleneck(64, 16, dcn=DCN).conv2, DeformConv2dPack)
