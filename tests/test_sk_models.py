"""SKNet backbones (paper Table 2 counts, mmdet ResNet interface) and the SKFPN neck."""
import os.path as osp
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNeXt
from mmdet.models.necks import FPN
from mmengine.registry import DefaultScope
from torch import nn

import plugin  # noqa: F401
from conftest import ROOT, autocast_dtype, load_plugin_config
from plugin.analysis import module_complexity
from plugin.backbones import SKNet
from plugin.layers import SKConv2d, sk_attention
from plugin.necks import SKFPN

# Li et al., CVPR 2019, Table 2 (224x224, with the 1000-class fc): params, multiply-adds
TABLE2 = {('ResNeXt', 50): (25.0e6, 4.24e9), ('SKNet', 50): (27.5e6, 4.47e9),
          ('SKNet', 101): (48.9e6, 8.46e9)}
TINY = dict(depth=50, groups=4, base_width=4, base_channels=16)  # widths 16..128, outs 64..512


class Classifier(nn.Module):
    """Backbone + global average pool + the 1000-class fc, as counted in the paper."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def sk_extra_params(depth, groups=32, reduction=16, min_dim=32, branches=2):
    """SK unit minus ResNeXt's 3x3 + BN, per block: M-1 more 3x3 branches with BN, fuse fc + BN,
    M select fcs (Sec. 3.1), with ResNeXt-32x4d's bottleneck widths 128..1024 (Table 1)."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    total = 0
    for n, width in zip(blocks, (128, 256, 512, 1024)):
        d = max(width // reduction, min_dim)
        branch = width * (width // groups) * 9 + 2 * width
        total += n * ((branches - 1) * branch + width * d + 2 * d + branches * d * width)
    return total


@pytest.mark.parametrize('arch', list(TABLE2))
def test_params_and_flops_match_table2(arch):
    name, depth = arch
    backbone = SKNet(depth) if name == 'SKNet' else ResNeXt(depth=depth, groups=32, base_width=4)
    c = module_complexity(Classifier(backbone), torch.zeros(1, 3, 224, 224))
    params, flops = TABLE2[arch]
    assert c['params'] == pytest.approx(params, rel=0.02)
    assert c['flops'] == pytest.approx(flops, rel=0.02)
    if name == 'SKNet':
        with torch.device('meta'):  # shapes only
            resnext = ResNeXt(depth=depth, groups=32, base_width=4)
        extra = sum(p.numel() for p in backbone.parameters()) - sum(
            p.numel() for p in resnext.parameters())
        assert extra == sk_extra_params(depth)


def test_block_layout_and_checkpoint_keys():
    net = SKNet(**TINY)
    block = net.layer2[0]
    assert isinstance(block.conv2, SKConv2d) and isinstance(block.norm2, nn.Identity)
    assert [b.conv.stride for b in block.conv2.branches] == [(2, 2), (2, 2)]
    assert [b.conv.dilation for b in block.conv2.branches] == [(1, 1), (2, 2)]
    assert block.conv2.branches[0].conv.groups == 4
    keys = set(net.state_dict())
    assert {'layer2.0.conv1.weight', 'layer2.0.bn1.weight', 'layer2.0.conv3.weight',
            'layer2.0.bn3.weight', 'layer2.0.downsample.0.weight',
            'layer2.0.conv2.branches.1.conv.weight', 'layer2.0.conv2.branches.1.bn.running_var',
            'layer2.0.conv2.attn.fuse.conv.weight', 'layer2.0.conv2.attn.fuse.bn.weight',
            'layer2.0.conv2.attn.select.weight'} <= keys
    assert not any(k.startswith('layer2.0.bn2') for k in keys)


def test_shapes_and_every_parameter_gets_a_gradient(device):
    net = SKNet(**TINY, norm_eval=False).to(device)
    net.train()  # mmdet's ResNet.train returns None
    outs = net(torch.randn(2, 3, 64, 64, device=device))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4),
                                              (2, 512, 2, 2)]
    sum(o.mean() for o in outs).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
    net.zero_grad()
    with torch.autocast(device.type, dtype=autocast_dtype(device)):
        outs = net(torch.randn(2, 3, 64, 64, device=device))
    sum(o.float().mean() for o in outs).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.fixture
def warn_again(monkeypatch):
    monkeypatch.setattr(sk_attention, '_warned_running_stats', False, raising=False)


def test_backbone_trains_on_one_image(device, warn_again):
    """One image per GPU (BN trained, not synchronised): every SK attention's fuse norm sees one
    value per channel and uses its running statistics; every parameter gets a gradient."""
    torch.manual_seed(0)
    net = SKNet(**TINY, norm_eval=False).to(device)
    net.train()
    with pytest.warns(UserWarning, match='SKAttention.*running statistics'):
        outs = net(torch.randn(1, 3, 64, 64, device=device))
    sum(o.square().mean() for o in outs).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_depth14_has_one_sk_block_per_stage():
    """The light SKNet of the occlusion study: depth 50's blocks, one per stage."""
    net = SKNet(depth=14, groups=8, base_width=4, base_channels=16)
    assert [len(getattr(net, f'layer{i}')) for i in range(1, 5)] == [1, 1, 1, 1]
    assert all(isinstance(getattr(net, f'layer{i}')[0].conv2, SKConv2d) for i in range(1, 5))
    outs = net(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    deep = SKNet(depth=50, groups=8, base_width=4, base_channels=16)
    first = {k: v.shape for k, v in deep.state_dict().items()
             if not re.match(r'layer\d\.[1-9]', k)}
    assert {k: v.shape for k, v in net.state_dict().items()} == first


def test_resnet_interface_dilation_frozen_stages_cp_plugins():
    x = torch.randn(2, 3, 64, 64)
    net = SKNet(**TINY, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(3, ),
                frozen_stages=1)
    net.eval()
    assert net(x)[0].shape == (2, 512, 8, 8)  # output stride 8, as mmseg's dilated backbones
    assert [b.conv.dilation for b in net.layer4[0].conv2.branches] == [(4, 4), (8, 8)]
    assert not any(p.requires_grad for p in net.layer1.parameters())
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1 / 4), stages=(False, False, True, True),
                    position='after_conv3')]
    torch.manual_seed(0)
    plain = SKNet(**TINY, plugins=plugins)
    torch.manual_seed(0)
    checkpointed = SKNet(**TINY, plugins=plugins, with_cp=True)
    plain.eval(), checkpointed.eval()
    xg = x.clone().requires_grad_()
    torch.testing.assert_close(checkpointed(xg)[-1], plain(x)[-1])


@pytest.mark.parametrize('zero', [True, False])
def test_zero_init_residual(zero):
    """Unlike mmdet's ResNeXt, whose zero_init_residual is a no-op, SK blocks start as identity."""
    net = SKNet(**TINY, zero_init_residual=zero)
    net.init_weights()
    norms = [block.norm3.weight for layer in (net.layer1, net.layer4) for block in layer]
    assert all(bool((w == 0).all()) == zero for w in norms)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_builds_in_both_scopes(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS as registry
    else:
        from mmseg.registry import MODELS as registry
    with DefaultScope.overwrite_default_scope(scope):
        net = registry.build(dict(type='SKNet', **TINY, out_indices=(3, )))
        neck = registry.build(dict(type='SKFPN', in_channels=[8, 16], out_channels=32,
                                   num_outs=3, sk_fusion=True))
    assert isinstance(net, SKNet) and isinstance(neck, SKFPN)


@pytest.mark.parametrize('kwargs, name', [
    (dict(depth=34), 'depth'),
    (dict(depth=50, dcn=dict(type='DCNv2')), 'dcn'),
    (dict(depth=50, num_branches=0), 'num_branches'),
    (dict(depth=50, reduction=0), 'reduction'),
])
def test_bad_backbone_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SKNet(**kwargs)


FPN_VARIANTS = [
    dict(num_outs=5, add_extra_convs='on_input'),
    dict(num_outs=5),
    dict(num_outs=5, start_level=1, add_extra_convs='on_output', relu_before_extra_convs=True),
    dict(num_outs=4, add_extra_convs='on_lateral'),
    dict(num_outs=2, start_level=1, end_level=2),
]
IN_CHANNELS = [32, 64, 64, 128]


def pyramid(batch=2, size=32):
    return [torch.randn(batch, c, size >> i, size >> i) for i, c in enumerate(IN_CHANNELS)]


@pytest.mark.parametrize('sk_fusion', [False, True])
@pytest.mark.parametrize('kwargs', FPN_VARIANTS)
def test_neck_output_shapes_equal_fpn(kwargs, sk_fusion):
    inputs = pyramid()
    fpn = FPN(IN_CHANNELS, 64, **kwargs).eval()
    sk = SKFPN(IN_CHANNELS, 64, sk_fusion=sk_fusion, **kwargs).eval()
    assert [o.shape for o in sk(inputs)] == [o.shape for o in fpn(inputs)]
    assert all(isinstance(c, SKConv2d) for c in sk.fpn_convs)


@pytest.mark.parametrize('kwargs', FPN_VARIANTS)
def test_one_dense_branch_neck_is_fpn(kwargs):
    """SK with one dense branch and no norm/act is FPN's 3x3 conv: same outputs, same weights."""
    torch.manual_seed(0)
    fpn = FPN(IN_CHANNELS, 64, **kwargs).eval()
    sk = SKFPN(IN_CHANNELS, 64, sk_cfg=dict(num_branches=1, groups=1, norm_cfg=None,
                                            act_cfg=None), **kwargs).eval()
    state = {k.replace('.conv.', '.branches.0.conv.') if k.startswith('fpn_convs') else k: v
             for k, v in fpn.state_dict().items()}
    sk.load_state_dict(state)
    inputs = pyramid()
    for a, b in zip(sk(inputs), fpn(inputs)):
        torch.testing.assert_close(a, b)


def test_sk_fusion_selects_between_lateral_and_top_down():
    torch.manual_seed(0)
    neck = SKFPN([16, 32], 32, num_outs=2, sk_fusion=True, sk_cfg=dict(groups=8)).eval()
    x = [torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4)]
    lat0, lat1 = neck.lateral_convs[0](x[0]), neck.lateral_convs[1](x[1])
    up = F.interpolate(lat1, size=(8, 8), mode='nearest')
    w = neck.fusions[0].weights([lat0, up])
    torch.testing.assert_close(w.sum(1), torch.ones(2, 32, 1, 1))
    p0 = w[:, 0] * lat0 + w[:, 1] * up
    out = neck(x)
    torch.testing.assert_close(out[0], neck.fpn_convs[0](p0))
    torch.testing.assert_close(out[1], neck.fpn_convs[1](lat1))


@pytest.mark.parametrize('batch', [2, 1])
def test_neck_every_parameter_gets_a_gradient(batch, device, warn_again):
    """Also with one image: the fusion attentions' norms, and the SK convs of the last extra
    level (a 1x1 map), see one value per channel."""
    neck = SKFPN(IN_CHANNELS, 64, num_outs=6, add_extra_convs='on_input', sk_fusion=True)
    neck = neck.train().to(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        outs = neck([x.to(device) for x in pyramid(batch)])
    assert [str(w.message).split(':')[0] for w in caught] == (
        [] if batch > 1 else ['SKAttention(channels=64, num_branches=2)'])
    assert outs[-1].shape == (batch, 64, 1, 1)
    sum(o.mean() for o in outs).backward()
    assert not [n for n, p in neck.named_parameters() if p.grad is None]
    assert all(torch.isfinite(p.grad).all() for p in neck.parameters())


@pytest.mark.parametrize('config', ['study/retinanet_sknet14-tiny_fpn_occshapes.py',
                                    'sk/retinanet_r18-tiny_sk-fpn_1x_occshapes.py'])
def test_detector_config_trains_with_one_image_per_batch(config, warn_again):
    """A real SKNet / SK-FPN detector config, batch_size=1: one training step (loss, backward)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from plugin.analysis import build_model
    cfg, _ = load_plugin_config(osp.join(ROOT, 'configs', config))
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    sample = DetDataSample(metainfo=dict(img_shape=(96, 96), ori_shape=(96, 96),
                                         pad_shape=(96, 96), batch_input_shape=(96, 96),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 50., 60.]]),
                                       labels=torch.tensor([1]))
    with pytest.warns(UserWarning, match='running statistics'):
        losses = model.loss(torch.randn(1, 3, 96, 96), [sample])
    loss = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
    loss.backward()
    assert torch.isfinite(loss)
    assert not [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
