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
from plugin.backbones.tied_resnet import MIXERS, TiedBottleneck, TiedSplitConv2d
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
    resnest = n_params(build(dict(type='ResNeSt', depth=50, stem_channels=64)))
    tied = n_params(build(dict(type='TiedResNeSt', depth=50, stem_channels=64)))
    assert tied == 13_699_200 and (tied + FC) / (resnest + FC) == pytest.approx(0.573, abs=1e-3)


@pytest.mark.parametrize('arch, params, ratio', [('base', 20_174_656, 0.888),
                                                 ('S', 11_394_400, 0.537)])
def test_tiedresnext_presets_are_lighter_than_resnext50(arch, params, ratio):
    """The paper: TiedResNeXt follows TiedResNet's trend (fewer parameters than the baseline)."""
    resnext = n_params(build(dict(type='ResNeXt', depth=50, groups=32, base_width=4)))
    ours = n_params(build(dict(type='TiedResNeXt', depth=50, arch=arch)))
    assert ours == params and (ours + FC) / (resnext + FC) == pytest.approx(ratio, abs=1e-3)


def test_text_preset_is_the_block_sec4_writes():
    """arch='text': B = 1, 2, 4, 8 for the four splits of every block, their sum feeds the 1x1
    mixer (w -> 4w), as Sec. 4's ablation text describes the 4s x 32w block."""
    net = build(dict(type='TiedResNet', depth=50, arch='text'))
    assert net.mixer == 'sum-conv' and net.tied_B == ((1, 2, 4, 8), ) * 4
    split = net.layer3[0].conv2
    assert [c.B for c in split.convs] == [1, 2, 4, 8] and split.out_channels == 4 * 128
    assert split.mixer_conv.weight.shape == (512, 128, 1, 1)
    assert n_params(net) == 20_086_192
    keys = set(net.state_dict())
    assert {'layer1.0.conv2.convs.3.weight', 'layer1.0.conv2.mixer_conv.weight'} <= keys
    # an explicit argument overrides the preset's reading; fewer stages cut its B
    assert build(dict(type='TiedResNet', depth=50, arch='text', mixer='sum')).mixer == 'sum'
    assert build(dict(type='TiedResNet', depth=14, arch='text', num_stages=2,
                      out_indices=(1, ))).tied_B == ((1, 2, 4, 8), ) * 2


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
    """The split stage of Sec. 3 written out: split j reads its own ``width`` channels, cut into
    groups (the paper's TGC), each group into B blocks that share the group's filters; then the
    mixer over the splits' concatenation or element-wise sum."""
    s, w = m.splits, m.width
    convs = [m.conv] * s if hasattr(m, 'conv') else list(m.convs)
    outs = []
    for j, (conv, xj) in enumerate(zip(convs, x.chunk(s, dim=1))):
        B, G = m.B[j], conv.groups // (s if hasattr(m, 'conv') else 1)
        weight = conv.weight.chunk(s)[j] if hasattr(m, 'conv') else conv.weight
        outs.append(torch.cat([F.conv2d(xb, wg, None, conv.stride, conv.padding, conv.dilation)
                               for xg, wg in zip(xj.chunk(G, dim=1), weight.chunk(G))
                               for xb in xg.chunk(B, dim=1)], dim=1))
    out = sum(outs) if m.mixer.startswith('sum') else torch.cat(outs, dim=1)
    return m.mixer_conv(out) if m.mixer.endswith('-conv') else out


MIXER_WIDTHS = {'concat-conv': (48, 48), 'sum-conv': (16, 48), 'concat': (None, 48),
                'sum': (None, 16)}  # (mixer conv input, output) for 3 splits of 16 channels


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('B, groups, stride', [(1, 1, 1), (2, 1, 2), (4, 2, 1)])
def test_split_conv_matches_reference(mixer, B, groups, stride):
    m = TiedSplitConv2d(3, 16, B=B, groups=groups, stride=stride, mixer=mixer)
    x = seeded(2, 48, 9, 9)
    out = m(x)
    mixer_in, width = MIXER_WIDTHS[mixer]
    assert out.shape[1] == m.out_channels == width
    assert (m.mixer_conv.in_channels if hasattr(m, 'mixer_conv') else None) == mixer_in
    torch.testing.assert_close(out, split_reference(x, m))


@pytest.mark.parametrize('mixer', MIXERS)
def test_split_conv_with_one_b_per_split(mixer):
    m = TiedSplitConv2d(2, 8, B=(1, 4), groups=2, mixer=mixer)
    x = seeded(2, 16, 7, 7)
    torch.testing.assert_close(m(x), split_reference(x, m))
    assert [c.weight.shape[0] for c in m.convs] == [8, 2]


def test_one_tgc_for_all_splits_is_a_tgc_per_split():
    """With one B the splits run as one TGC; split j's filters are rows j of its weight, and it
    equals a TGC per split on the split's own channels (what a B per split builds)."""
    one = TiedSplitConv2d(3, 16, B=2, groups=2, mixer='concat')
    per = [TiedBlockConv2d(16, 16, 3, padding=1, groups=2, B=2, bias=False) for _ in range(3)]
    with torch.no_grad():
        for conv, w in zip(per, one.conv.weight.chunk(3)):
            conv.weight.copy_(w)
    x = seeded(2, 48, 6, 6)
    torch.testing.assert_close(one(x), torch.cat([c(xj) for c, xj in zip(per, x.chunk(3, 1))], 1))


@pytest.mark.parametrize('cfg, match', [
    (dict(TINY, arch='XL'), r"TiedResNet: arch must be one of \['S', 'base', 'text', 'tiny'\]"),
    (dict(TINY, arch=dict(splits=2)), r'TiedResNet: arch dict lacks'),
    (dict(TINY, arch=dict(splits=2, base_width=8, groups=1, B=2)),
     r"TiedResNet: arch dict has unknown keys \['B'\]"),
    (dict(TINY, mixer='conv'), r"TiedResNet: mixer must be one of \('concat-conv', 'sum-conv'"),
    (dict(TINY, arch=dict(splits=2, base_width=8, groups=1, mixer='max')),
     r'TiedResNet: mixer must be one of'),
    (dict(type='TiedResNeSt', depth=50, order='radix'), r'TiedResNeSt: order must be one of'),
    (dict(TINY, tied_B=(1, 2)), r'TiedResNet: tied_B=\(1, 2\) needs one entry per stage'),
    (dict(TINY, depth=18), r'TiedResNet: depth must be one of'),
    (dict(TINY, tied_B=(1, 2, 3, 8)), r'TiedBlockConv2d: in_channels=64 .* B\*groups=3\*2'),
    (dict(type='TiedResNet', depth=50, arch='S', tied_B=((1, 2, 4, 8), ) * 4),
     r'TiedBlockConv2d: in_channels=18 is not divisible by B=4'),  # per-split B needs 32w
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
                                 dict(TINY, tied_B=(1, (1, 2), 4, 8), mixer='sum-conv'),
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


def splat_loop(x, conv, B):
    """The paper's TGC equation on ResNeSt's split-attention conv, by hand: group g = r * card + k
    (radix path r, cardinal group k, ResNeSt's order) is cut into B blocks, and every block of g
    is convolved with g's own filters W'_g."""
    G = conv.groups
    return torch.cat([F.conv2d(xb, wg, None, conv.stride, conv.padding, conv.dilation)
                      for xg, wg in zip(x.chunk(G, dim=1), conv.weight.chunk(G))
                      for xb in xg.chunk(B, dim=1)], dim=1)


@pytest.mark.parametrize('groups', [1, 2])
def test_tiedresnest_split_attention_conv_is_the_papers_tgc(groups):
    net = build(dict(type='TiedResNeSt', depth=50, base_channels=16, stem_channels=16,
                     groups=groups, tied_B=2))
    splat = net.layer2[0].conv2.conv
    assert (splat.B, splat.groups, splat.order) == (2, 2 * groups, 'group')
    x = seeded(2, splat.in_channels, 6, 6)
    torch.testing.assert_close(splat(x), splat_loop(x, splat, 2))


@pytest.mark.parametrize('order, paths_share_filters', [('group', False), ('block', True)])
def test_tiedresnest_radix_paths_keep_their_own_filters(order, paths_share_filters):
    """Radix path r reads input half r and writes output half r. The same input on both halves
    gives the same two outputs only when the paths share one filter bank (order='block')."""
    net = build(dict(type='TiedResNeSt', depth=50, base_channels=16, stem_channels=16,
                     tied_B=2, order=order))
    splat = net.layer1[0].conv2.conv
    half = seeded(1, splat.in_channels // 2, 6, 6)
    path0, path1 = splat(torch.cat([half, half], dim=1)).chunk(2, dim=1)
    assert torch.allclose(path0, path1) == paths_share_filters
