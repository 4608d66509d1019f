"""TBC/TGC/TFC, TiedSE, TiedGCB and TiedGCBNeck: against explicit formulas, mmcv/nn references."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer, build_plugin_layer
from mmcv.cnn.bricks import ContextBlock
from mmengine.registry import MODELS, init_default_scope
from torch import nn

import plugin  # noqa: F401  (registers the layers)
from conftest import autocast_dtype
from plugin.analysis.complexity import module_complexity
from plugin.layers import TiedBlockConv2d, TiedGCB, TiedLinear, TiedSE
from plugin.necks import TiedGCBNeck


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def block_loop_conv(x, conv, B):
    """Eq. 3 literally: the same filter bank (and bias) on every block of channels; with groups,
    the official code's folding (order='block': one grouped filter bank shared by the blocks)."""
    return torch.cat([
        F.conv2d(xb, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        for xb in x.chunk(B, dim=1)
    ], dim=1)


def tgc_loop_conv(x, conv, B):
    """The paper's TGC equation literally: G groups, each cut into B blocks; block b of group g is
    convolved with group g's own filters W'_g (and bias) alone."""
    G = conv.groups
    w_g, b_g = conv.weight.chunk(G, dim=0), (conv.bias.chunk(G) if conv.bias is not None
                                             else [None] * G)
    return torch.cat([F.conv2d(xb, w_g[g], b_g[g], conv.stride, conv.padding, conv.dilation)
                      for g, xg in enumerate(x.chunk(G, dim=1)) for xb in xg.chunk(B, dim=1)],
                     dim=1)


@pytest.mark.parametrize('cfg', [
    dict(B=4, kernel_size=3, stride=1, padding=1),
    dict(B=2, kernel_size=3, stride=2, padding=2, dilation=2),
    dict(B=8, kernel_size=1),
    dict(B=2, kernel_size=3, stride=2, padding=1, groups=4),  # TGC
    dict(B=4, kernel_size=(3, 1), padding=(1, 0), groups=2, bias=False),
])
@pytest.mark.parametrize('order', ['group', 'block'])
def test_tbc_matches_block_loop(cfg, order, device):
    conv = TiedBlockConv2d(32, 48, order=order, **cfg).to(device)
    x = seeded(2, 32, 11, 9).to(device)
    out = conv(x)
    loop = tgc_loop_conv if order == 'group' else block_loop_conv
    ref = loop(x, conv, cfg['B'])
    assert out.shape == ref.shape == (2, 48) + ref.shape[2:]
    torch.testing.assert_close(out, ref)
    if cfg.get('groups', 1) == 1:  # TBC: one filter bank, both orders are Eq. 3
        torch.testing.assert_close(out, block_loop_conv(x, conv, cfg['B']))


@pytest.mark.parametrize('order, shares_with_0_3', [('group', [4]), ('block', [8])])
def test_tgc_order_decides_which_channels_share_a_filter(order, shares_with_0_3):
    """G=2, B=2, 16 channels in runs of 4. Group-first: group 0 = channels 0-7, its blocks 0-3 and
    4-7 share W'_0. Block-first: block 0 = channels 0-7 (groups 0, 1), block 1 = 8-15, so 0-3 and
    8-11 (group 0 of each block) share W'_0."""
    conv = TiedBlockConv2d(16, 16, 3, padding=1, groups=2, B=2, bias=False, order=order)
    z = seeded(1, 4, 5, 5)

    def response(start):  # z on input channels start..start+3, read at the same output channels
        x = torch.zeros(1, 16, 5, 5)
        x[:, start:start + 4] = z
        return conv(x)[:, start:start + 4]

    assert [s for s in (4, 8, 12) if torch.allclose(response(s), response(0))] == shares_with_0_3


def test_tbc_b1_is_conv2d():
    ref = nn.Conv2d(16, 24, 3, stride=2, padding=2, dilation=2, groups=4)
    conv = TiedBlockConv2d(16, 24, 3, stride=2, padding=2, dilation=2, groups=4, B=1)
    conv.load_state_dict(ref.state_dict())  # same keys and shapes
    x = seeded(2, 16, 15, 13)
    torch.testing.assert_close(conv(x), ref(x), rtol=0, atol=0)


def test_tbc_params_shrink_by_b2_and_flops_by_b():
    x = seeded(1, 64, 16, 16)
    dense = module_complexity(nn.Conv2d(64, 128, 3, padding=1, bias=False), x)
    for B in (2, 4, 8):
        tied = module_complexity(TiedBlockConv2d(64, 128, 3, padding=1, bias=False, B=B), x)
        assert tied['params'] * B * B == dense['params']
        assert tied['flops'] * B == dense['flops']


def test_tbc_registry_and_conv_module():
    conv = build_conv_layer(dict(type='TBC', B=2), 16, 32, 3, stride=2, padding=1, dilation=1,
                            groups=1, bias=False)
    assert isinstance(conv, TiedBlockConv2d) and conv.B == 2
    assert (conv.in_channels, conv.out_channels) == (16, 32)
    assert conv.weight.shape == (16, 8, 3, 3) and conv.bias is None
    tgc = build_conv_layer(dict(type='TGC', B=4), 32, 32, 3, padding=1, groups=2)
    assert tgc.weight.shape == (8, 4, 3, 3)
    module = ConvModule(16, 32, 3, padding=1, conv_cfg=dict(type='TBC', B=4),
                        norm_cfg=dict(type='BN'))
    assert module(seeded(2, 16, 8, 8)).shape == (2, 32, 8, 8)
    for scope in ('mmdet', 'mmseg'):
        init_default_scope(scope)
        assert type(MODELS.build(dict(type='TBC', in_channels=8, out_channels=8,
                                      kernel_size=1, B=2))) is TiedBlockConv2d


@pytest.mark.parametrize('build, match', [
    (lambda: TiedBlockConv2d(30, 64, 3, B=4), r'TiedBlockConv2d: in_channels=30 .* B=4'),
    (lambda: TiedBlockConv2d(64, 30, 3, B=4), r'TiedBlockConv2d: out_channels=30 .* B=4'),
    (lambda: TiedBlockConv2d(64, 64, 3, B=4, groups=32), r'in_channels=64 .* B\*groups=4\*32'),
    (lambda: TiedBlockConv2d(64, 64, 3, B=0), r'TiedBlockConv2d: B must be a positive int'),
    (lambda: TiedBlockConv2d(64, 64, 3, B=2, groups=2, order='blocks'),
     r"TiedBlockConv2d: order must be one of \('group', 'block'\), got 'blocks'"),
    (lambda: TiedLinear(10, 8, B=4), r'TiedLinear: in_features=10 .* B=4'),
    (lambda: TiedSE(100, B=8), r'TiedSE: in_channels=100 .* B=8'),
    (lambda: TiedSE(64, B=2, reduction=0), r'TiedSE: reduction'),
    (lambda: TiedGCB(256, ratio=1 / 16, B=32), r'TiedGCB: bottleneck_channels=16 .* B=32'),
    (lambda: TiedGCB(100, ratio=1 / 4, B=8), r'TiedGCB: in_channels=100 .* B=8'),
])
def test_bad_channels_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize('B', [1, 2, 4])
def test_tfc_matches_block_loop_and_linear(B):
    fc = TiedLinear(24, 16, B=B)
    x = seeded(3, 5, 24)
    ref = torch.cat([F.linear(xb, fc.weight, fc.bias) for xb in x.chunk(B, dim=-1)], dim=-1)
    torch.testing.assert_close(fc(x), ref)
    assert fc.weight.shape == (16 // B, 24 // B)
    if B == 1:
        linear = nn.Linear(24, 16)
        fc.load_state_dict(linear.state_dict())
        torch.testing.assert_close(fc(x), linear(x), rtol=0, atol=0)
    assert type(MODELS.build(dict(type='TFC', in_features=8, out_features=8, B=2))) is TiedLinear


def test_tied_se_matches_explicit_formula():
    se = TiedSE(64, B=4, reduction=4)
    x = seeded(2, 64, 5, 7)
    w1, b1, w2, b2 = se.fc1.weight, se.fc1.bias, se.fc2.weight, se.fc2.bias
    assert w1.shape == (4, 16)  # C/B = 16 channels per block squeezed to 16 // 4 = 4 units
    gates = [torch.sigmoid(F.linear(F.relu(F.linear(yb, w1, b1)), w2, b2))
             for yb in x.mean((2, 3)).chunk(4, dim=1)]
    torch.testing.assert_close(se(x), x * torch.cat(gates, dim=1)[:, :, None, None])


def test_tied_se_b1_is_plain_se_and_b8_has_64x_fewer_params():
    se = TiedSE(64, B=1, reduction=16)
    plain = nn.Sequential(nn.Linear(64, 4), nn.ReLU(), nn.Linear(4, 64), nn.Sigmoid())
    plain[0].load_state_dict(se.fc1.state_dict())
    plain[2].load_state_dict(se.fc2.state_dict())
    x = seeded(2, 64, 6, 6)
    torch.testing.assert_close(se(x), x * plain(x.mean((2, 3)))[:, :, None, None])
    weights = lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith('weight'))  # noqa
    assert weights(TiedSE(2048, B=1)) == 64 * weights(TiedSE(2048, B=8))


def randomise(module, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_tied_gcb_b1_is_mmcv_context_block():
    ref = ContextBlock(64, ratio=1 / 8)
    randomise(ref)  # the last conv starts at zero: make the test see the transform
    gcb = TiedGCB(64, ratio=1 / 8, B=1)
    gcb.load_state_dict(ref.state_dict())  # same keys and shapes
    x = seeded(2, 64, 9, 7)
    torch.testing.assert_close(gcb(x), ref(x))


def test_tied_gcb_matches_explicit_formula_and_starts_as_identity():
    gcb = TiedGCB(32, ratio=1 / 2, B=4)
    x = seeded(2, 32, 6, 5)
    torch.testing.assert_close(gcb(x), x, rtol=0, atol=0)  # last conv zero-initialised
    randomise(gcb)
    conv1, ln, _, conv2 = gcb.channel_add_conv
    attn = torch.softmax(gcb.conv_mask(x).flatten(2), dim=-1)  # [N, 1, HW]
    context = (x.flatten(2) * attn).sum(-1)[:, :, None, None]  # [N, C, 1, 1]
    hidden = F.relu(ln(block_loop_conv(context, conv1, 4)))
    torch.testing.assert_close(gcb(x), x + block_loop_conv(hidden, conv2, 4))


def test_tied_gcb_zero_init_survives_resnet_init():
    init_default_scope('mmdet')
    net = MODELS.build(dict(type='ResNet', depth=18, base_channels=8, num_stages=1,
                            strides=(1, ), dilations=(1, ), out_indices=(0, )))
    net.layer1[0].gcb = TiedGCB(8, ratio=1 / 2, B=2)
    randomise(net.layer1[0].gcb)
    net.init_weights()  # mmdet ResNet's Kaiming init of every Conv2d, then the blocks' own
    assert not net.layer1[0].gcb.channel_add_conv[-1].weight.any()


@pytest.mark.parametrize('module, abbr', [(TiedSE, 'tied_se'), (TiedGCB, 'tied_gcb')])
def test_attention_plugins_build_by_name(module, abbr):
    name, layer = build_plugin_layer(dict(type=module.__name__, B=4), in_channels=64, postfix=1)
    assert name == f'{abbr}1' and isinstance(layer, module)


@pytest.mark.parametrize('make', [
    lambda: TiedBlockConv2d(16, 32, 3, padding=1, B=4, groups=2),
    lambda: TiedSE(32, B=4, reduction=2),
    lambda: TiedGCB(32, ratio=1 / 4, B=2),
])
def test_every_parameter_gets_a_gradient_and_autocast_runs(make, device):
    """Autocast in AMP's dtype of the device: bf16 on CPU, fp16 on CUDA."""
    module = make()
    randomise(module)
    module.to(device)
    x = seeded(2, 16 if isinstance(module, TiedBlockConv2d) else 32, 8, 8).to(device)
    x.requires_grad_()
    module(x).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    module.zero_grad()
    dtype = autocast_dtype(device)
    with torch.autocast(device.type, dtype=dtype):
        out = module(x.detach())
    assert torch.isfinite(out.float()).all()
    if isinstance(module, TiedBlockConv2d):
        assert out.dtype == dtype
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


def test_tbc_channels_last_input():
    conv = TiedBlockConv2d(16, 16, 3, padding=1, B=4)
    x = seeded(2, 16, 7, 7)
    torch.testing.assert_close(conv(x.to(memory_format=torch.channels_last)), conv(x))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_tied_gcb_neck_wraps_fpn(scope, device):
    init_default_scope(scope)
    cfg = dict(type='TiedGCBNeck', B=4, ratio=1 / 4,
               neck=dict(type='FPN', in_channels=[8, 16, 32], out_channels=16, num_outs=4))
    neck = MODELS.build(cfg).to(device)
    assert isinstance(neck, TiedGCBNeck) and len(neck.gcbs) == 4
    feats = [seeded(2, c, s, s, seed=i).to(device)
             for i, (c, s) in enumerate([(8, 16), (16, 8), (32, 4)])]
    outs = neck(feats)
    torch.testing.assert_close(outs, tuple(neck.neck(feats)))  # identity at init
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]
    randomise(neck.gcbs)
    sum(o.sum() for o in neck(feats)).backward()
    assert all(p.grad is not None for p in neck.parameters())
    with pytest.raises(ValueError, match='out_channels'):
        TiedGCBNeck(neck=dict(type='FPN', in_channels=[8], num_outs=1))
