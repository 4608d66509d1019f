"""TiedResNet / TiedResNeXt / TiedResNeSt: presets, mmdet ResNet interface, split convs, plugins."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS, init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

import plugin  # noqa: F401  (registers the backbones)
from conftest import autocast_dtype
from plugin.analysis.complexity import module_complexity
from plugin.backbones.tied_resnest import TiedResNeStBottleneck
from plugin.backbones.tied_resnet import TiedBottleneck, TiedSplitConv2d
from plugin.layers import TiedBlockConv2d, TiedGCB, TiedSE

FC = 2048 * 1000 + 1000  # the ImageNet classifier the paper's parameter counts include
TINY = dict(type='TiedResNet', depth=14, arch='tiny', base_channels=16)


def build(cfg, scope='mmdet'):
    init_default_scope(scope)
    return MODELS.build(cfg)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope='module')
def resnet50_params():
    return n_params(build(dict(type='ResNet', depth=50)))


@pytest.mark.parametrize('cfg, params, ratio, paper', [
    (dict(type='TiedResNet', depth=50), 20_690_752, 0.890, 0.90),  # ~10% fewer than ResNet-50
    (dict(type='TiedResNet', depth=50, arch='S'), 11_487_712, 0.530, 0.54),  # ~54%
])
def test_preset_parameters_match_paper(cfg, params, ratio, paper, resnet50_params):
    ours = n_params(build(cfg))
    assert ours == params  # pins the architecture
    assert (ours + FC) / (resnet50_params + FC) == pytest.approx(ratio, abs=1e-3)
    assert abs(ratio - paper) < 0.015


def test_tiedresnet50_s_has_60_percent_of_resnet50_flops():
    x = torch.zeros(1, 3, 224, 224)
    ours = module_complexity(build(dict(type='TiedResNet', depth=50, arch='S')), x)['flops']
    ref = module_complexity(build(dict(type='ResNet', depth=50)), x)['flops']
    assert ref == pytest.approx(4.11e9, rel=0.01)  # mmengine counts ResNet-50 as the paper does
    assert ours / ref == pytest.approx(0.60, abs=0.01)


def test_other_presets_parameter_counts():
    assert n_params(build(dict(type='TiedResNet', depth=101))) == 36_984_640  # R101: 42.5M
    assert n_params(build(dict(type='TiedResNeXt', depth=50, arch='S'))) == 23_155_456
    resnest = n_params(build(dict(type='ResNeSt', depth=50, stem_channels=64)))
    tied = n_params(build(dict(type='TiedResNeSt', depth=50, stem_channels=64)))
    assert tied == 13_699_200 and (tied + FC) / (resnest + FC) == pytest.approx(0.573, abs=1e-3)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_tiny_output_channels_and_strides(scope):
    net = build(TINY, scope)
    outs = net(seeded(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 24), (2, 128, 8, 12), (2, 256, 4, 6),
                                              (2, 512, 2, 3)]
    net = build(dict(TINY, num_stages=3, strides=(1, 2, 1), dilations=(1, 1, 2),
                     out_indices=(1, 2)), scope)
    assert [tuple(o.shape) for o in net(seeded(1, 3, 64, 64))] == [(1, 128, 8, 8),
                                                                   (1, 256, 8, 8)]


def test_block_layout_and_checkpoint_keys():
    net = build(dict(TINY, style='caffe'))
    block = net.layer2[0]
    assert isinstance(block, TiedBottleneck) and block.conv1.B == 2
    assert block.conv1.stride == (2, 2) and block.conv2.conv.stride == (1, 1)  # caffe style
    assert block.conv2.conv.B == 2 and block.conv2.conv.groups == 2  # stage 2: B=2, 2 splits
    assert net.layer4[0].conv2.conv.B == 8
    keys = {k for k in net.state_dict() if k.startswith('layer1.0.')}
    assert keys >= {'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.conv2.conv.weight',
                    'layer1.0.conv2.mixer_conv.weight', 'layer1.0.bn2.weight',
                    'layer1.0.conv3.weight', 'layer1.0.bn3.weight',
                    'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight'}


def split_reference(x, m):
    """The split stage of Sec. 3 written out: split j (its own filters W_j) on each of its B blocks
    (the same W_j, tied), then the mixer."""
    s, w, B = m.splits, m.width, m.B[0]
    conv = m.conv
    n, _, h, wd = x.shape
    xb = x.reshape(n, B, s, w // B, h, wd)  # the single-TGC layout: [block][split][channels]
    outs = [[F.conv2d(xb[:, b, j], conv.weight[j * w // B:(j + 1) * w // B], None, conv.stride,
                      conv.padding, conv.dilation, conv.groups // s)
             for j in range(s)] for b in range(B)]
    out = torch.stack([torch.stack(row, 1) for row in outs], 1)  # [N, B, s, w/B, H, W]
    if m.mixer == 'sum':
        return out.sum(2).flatten(1, 2)
    out = out.flatten(1, 3)
    return m.mixer_conv(out) if m.mixer == 'conv' else out


@pytest.mark.parametrize('mixer', ['conv', 'concat', 'sum'])
@pytest.mark.parametrize('B, groups, stride', [(1, 1, 1), (2, 1, 2), (4, 2, 1)])
def test_split_conv_matches_reference(mixer, B, groups, stride):
    m = TiedSplitConv2d(3, 16, B=B, groups=groups, stride=stride, mixer=mixer)
    x = seeded(2, 48, 9, 9)
    out = m(x)
    assert out.shape[1] == m.out_channels == (16 if mixer == 'sum' else 48)
    torch.testing.assert_close(out, split_reference(x, m))


@pytest.mark.parametrize('mixer', ['conv', 'concat', 'sum'])
def test_split_conv_with_one_b_per_split(mixer):
    m = TiedSplitConv2d(2, 8, B=(1, 4), mixer=mixer)
    x = seeded(2, 16, 7, 7)
    outs = []
    for conv, part in zip(m.convs, x.chunk(2, dim=1)):
        outs.append(torch.cat([F.conv2d(xb, conv.weight, None, 1, 1)
                               for xb in part.chunk(conv.B, dim=1)], dim=1))
    ref = sum(outs) if mixer == 'sum' else torch.cat(outs, dim=1)
    ref = m.mixer_conv(ref) if mixer == 'conv' else ref
    torch.testing.assert_close(m(x), ref)
    assert [c.weight.shape[0] for c in m.convs] == [8, 2]


@pytest.mark.parametrize('cfg, match', [
    (dict(TINY, arch='XL'), r"TiedResNet: arch must be one of \['S', 'base', 'tiny'\]"),
    (dict(TINY, arch=dict(splits=2)), r'TiedResNet: arch dict lacks'),
    (dict(TINY, mixer='max'), r'TiedResNet: mixer must be one of'),
    (dict(TINY, tied_B=(1, 2)), r'TiedResNet: tied_B=\(1, 2\) needs one entry per stage'),
    (dict(TINY, depth=18), r'TiedResNet: depth must be one of'),
    (dict(TINY, tied_B=(1, 2, 3, 8)), r'TiedBlockConv2d: in_channels=64 .* B\*groups=3\*2'),
    (dict(TINY, tied_B=(1, 2, 4, (1, 2, 3))), r'TiedSplitConv2d: B=\(1, 2, 3\) must be'),
    (dict(TINY, dcn=dict(type='DCN', deform_groups=1), stage_with_dcn=(True, ) * 4),
     r'TiedBottleneck: dcn is not supported'),
    (dict(type='TiedResNeSt', depth=50, tied_B=(2, 2)), r'TiedResNeSt: tied_B=\(2, 2\)'),
])
def test_bad_arguments_raise_value_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        build(cfg)


def test_frozen_stages_and_norm_eval_as_mmdet_resnet():
    net = build(dict(TINY, frozen_stages=1, norm_eval=False))
    net.train()
    for module in (net.conv1, net.norm1, net.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert not net.norm1.training and not net.layer1[0].bn2.training
    assert all(p.requires_grad for p in net.layer2.parameters()) and net.layer2[0].bn2.training
    net = build(dict(TINY, norm_eval=True))
    net.train()
    assert all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))
    assert all(p.requires_grad for p in net.parameters())


def test_zero_init_residual():
    net = build(TINY)
    net.init_weights()
    assert all(not layer[0].bn3.weight.any() for layer in (net.layer1, net.layer4))
    assert net.layer1[0].conv2.conv.weight.std() > 0
    net = build(dict(TINY, zero_init_residual=False))
    net.init_weights()
    assert net.layer1[0].bn3.weight.all()


@pytest.mark.parametrize('cfg', [dict(TINY, mixer='sum', with_cp=True),
                                 dict(TINY, tied_B=(1, (1, 2), 4, 8)),
                                 dict(type='TiedResNeSt', depth=50, base_channels=16,
                                      stem_channels=16)])
def test_every_parameter_gets_a_gradient_and_autocast_runs(cfg, device):
    """Autocast in AMP's dtype of the device (bf16 on CPU; fp16 on CUDA, with a training step)."""
    net = build(cfg).to(device)
    net.train()
    sum(o.square().mean() for o in net(seeded(2, 3, 64, 64).to(device))).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    dtype = autocast_dtype(device)
    if device.type == 'cuda':
        net.zero_grad()
        with torch.autocast('cuda', dtype=dtype):
            outs = net(seeded(2, 3, 64, 64).to(device))
        sum(o.float().square().mean() for o in outs).backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    net.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
        outs = net(seeded(1, 3, 64, 64).to(device))
    assert all(torch.isfinite(o.float()).all() for o in outs)


def test_tied_plugins_inside_mmdet_resnet_and_tiedresnet():
    plugins = [dict(cfg=dict(type='TiedSE', B=4), stages=(False, True, True, True),
                    position='after_conv3'),
               dict(cfg=dict(type='TiedGCB', ratio=1 / 4, B=4), position='after_conv3')]
    net = build(dict(type='ResNet', depth=50, base_channels=16, plugins=plugins))
    assert isinstance(net.layer1[0].tied_gcb, TiedGCB) and not hasattr(net.layer1[0], 'tied_se')
    assert isinstance(net.layer2[1].tied_se, TiedSE) and net.layer2[1].tied_se.fc1.B == 4
    assert [o.shape[1] for o in net(seeded(1, 3, 64, 64))] == [64, 128, 256, 512]
    # in a TiedBottleneck the channels after conv1/conv2 are splits * width, not planes
    inner = [dict(cfg=dict(type='TiedGCB', ratio=1 / 2, B=2), position='after_conv1'),
             dict(cfg=dict(type='TiedSE', B=2, postfix='2'), position='after_conv2')]
    net = build(dict(TINY, mixer='sum', plugins=inner))
    block = net.layer3[0]
    assert block.tied_gcb.in_channels == 2 * 32 and block.tied_se2.fc1.in_features == 32
    assert net(seeded(1, 3, 64, 64))[-1].shape == (1, 512, 2, 2)


def test_tiedresnest_ties_entry_and_split_attention_convs():
    net = build(dict(type='TiedResNeSt', depth=50, base_channels=16, stem_channels=16,
                     tied_B=(2, 2, 4, 4)), 'mmseg')
    block = net.layer3[0]
    assert isinstance(block, TiedResNeStBottleneck)
    assert isinstance(block.conv1, TiedBlockConv2d) and block.conv1.B == 4
    splat = block.conv2.conv
    assert isinstance(splat, TiedBlockConv2d) and (splat.B, splat.groups) == (4, 2)
    assert type(block.conv3) is torch.nn.Conv2d
    net.eval()
    assert [o.shape[1:] for o in net(seeded(1, 3, 64, 64))] == [
        (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
