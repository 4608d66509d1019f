"""SKConv2d and SKAttention against the paper's equations, and as mmcv's conv layer 'SK'."""
import copy
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import init_default_scope
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import plugin  # noqa: F401  (registers 'SK')
from conftest import autocast_dtype
from plugin.layers import SKAttention, SKConv2d, sk_attention


def randomize_bn(module):
    """Non-trivial running statistics and affine parameters, so eval-mode BN is not identity."""
    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return module


def bn_eval(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0, bn.eps)


def reference_sk(x, sk):
    """SKNet Eq. 1-6 written out, with the layer's weights (BN in eval mode)."""
    outs = []
    for m, branch in enumerate(sk.branches, start=1):
        conv = branch.conv
        u = F.conv2d(x, conv.weight, None, conv.stride, padding=m, dilation=m, groups=conv.groups)
        outs.append(F.relu(bn_eval(u, branch.bn)))
    s = sum(outs).mean((2, 3))  # Eq. 1-2: [B, C]
    fuse = sk.attn.fuse
    z = F.relu(bn_eval((s @ fuse.conv.weight.flatten(1).t())[..., None, None], fuse.bn))  # Eq. 3
    c = s.shape[1]
    a = sk.attn.select.weight.flatten(1)  # rows m*C..(m+1)*C: A_m of Eq. 5
    logits = torch.stack([z.flatten(1) @ a[m * c:(m + 1) * c].t() for m in range(len(outs))])
    weights = logits.exp() / logits.exp().sum(0)  # Eq. 5, the paper's form
    return sum(w[..., None, None] * u for w, u in zip(weights, outs))  # Eq. 6


@pytest.mark.parametrize('num_branches, stride', [(2, 1), (3, 2)])
def test_sk_conv_matches_the_equations(num_branches, stride, device):
    torch.manual_seed(0)
    sk = randomize_bn(SKConv2d(32, 64, stride=stride, num_branches=num_branches, groups=8))
    sk = sk.eval().to(device)
    x = torch.randn(2, 32, 13, 11, device=device)
    out = sk(x)
    assert out.shape == (2, 64, (13 - 1) // stride + 1, (11 - 1) // stride + 1)
    torch.testing.assert_close(out, reference_sk(x, sk), rtol=1e-4, atol=1e-5)
    assert (out >= 0).all()  # convex mix of ReLU'd branches


def test_fuse_width_is_max_of_c_over_r_and_l():
    assert SKAttention(128, reduction=16, min_dim=32).attn_channels == 32  # Eq. 4: max(8, 32)
    assert SKAttention(1024, reduction=16, min_dim=32).attn_channels == 64
    sk = SKConv2d(64, 256, reduction=4, min_dim=8)
    assert sk.attn.fuse.conv.weight.shape == (64, 256, 1, 1)
    assert sk.attn.select.weight.shape == (2 * 256, 64, 1, 1)


def test_branch_attention_sums_to_one_per_channel():
    torch.manual_seed(0)
    attn = SKAttention(48, num_branches=3, reduction=4, min_dim=8).train()
    feats = [torch.randn(4, 48, 6, 5) * 3 for _ in range(3)]
    weights = attn.weights(feats)
    assert weights.shape == (4, 3, 48, 1, 1)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(4, 48, 1, 1))
    assert weights.std() > 0.01  # not a constant split
    mixed = sum(w * f for w, f in zip(weights.unbind(1), feats))  # Eq. 6
    torch.testing.assert_close(attn(feats), mixed)


@pytest.mark.parametrize('train', [True, False])
def test_one_branch_is_conv_bn_relu(train):
    torch.manual_seed(0)
    sk = randomize_bn(SKConv2d(16, 32, stride=2, num_branches=1, groups=4, dilation=2))
    ref = nn.Sequential(nn.Conv2d(16, 32, 3, 2, padding=2, dilation=2, groups=4, bias=False),
                        nn.BatchNorm2d(32), nn.ReLU())
    ref[0].weight.data.copy_(sk.branches[0].conv.weight)
    ref[1].load_state_dict(sk.branches[0].bn.state_dict())
    sk.train(train), ref.train(train)
    x = torch.randn(3, 16, 12, 12)
    torch.testing.assert_close(sk(x), ref(x))
    assert sk.attn is None
    assert sum(p.numel() for p in sk.parameters()) == sum(p.numel() for p in ref.parameters())


def test_branch_dilation_and_padding():
    sk = SKConv2d(32, 32, num_branches=3, dilation=2)
    assert [b.conv.dilation for b in sk.branches] == [(2, 2), (4, 4), (6, 6)]
    assert [b.conv.padding for b in sk.branches] == [(2, 2), (4, 4), (6, 6)]
    assert sk(torch.randn(2, 32, 9, 9)).shape == (2, 32, 9, 9)


def test_every_parameter_gets_a_gradient(device):
    sk = SKConv2d(32, 32, num_branches=3, groups=4).train().to(device)
    x = torch.randn(2, 32, 8, 8, device=device, requires_grad=True)
    sk(x).square().mean().backward()
    for name, p in sk.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_autocast(device):
    """bf16 on CPU, fp16 on CUDA: inference close to float32, and a training step."""
    dtype = autocast_dtype(device)
    sk = SKConv2d(32, 32, groups=4).eval().to(device)
    x = torch.randn(2, 32, 8, 8, device=device)
    with torch.autocast(device.type, dtype=dtype):
        out = sk(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), sk(x), rtol=0.05, atol=0.05)
    sk.train()
    with torch.autocast(device.type, dtype=dtype):
        out = sk(x)
    out.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in sk.parameters())


def old_forward(sk, x):
    """SKConv2d's forward before batches of one were handled: ConvModules called as they are."""
    feats = [branch(x) for branch in sk.branches]
    s = sum(f.mean((2, 3), keepdim=True) for f in feats)
    weights = sk.attn.select(sk.attn.fuse(s)).view(x.shape[0], len(feats), -1, 1, 1).softmax(1)
    weights = weights.unbind(1)
    out = feats[0] * weights[0]
    for feat, weight in zip(feats[1:], weights[1:]):
        out = out.addcmul_(feat, weight)
    return out


@pytest.fixture
def warn_again(monkeypatch):
    """The once-per-process warning of a batch of one, as if not yet shown."""
    monkeypatch.setattr(sk_attention, '_warned_running_stats', False, raising=False)


@pytest.mark.parametrize('norm', ['BN', 'SyncBN'])
def test_batches_of_two_or_more_train_as_before(norm, device, warn_again):
    torch.manual_seed(0)
    sk = randomize_bn(SKConv2d(32, 64, groups=4, norm_cfg=dict(type=norm))).train().to(device)
    old = copy.deepcopy(sk)
    for n in (2, 3):
        x = torch.randn(n, 32, 6, 5, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no running-statistics warning
            out = sk(x)
        torch.testing.assert_close(out, old_forward(old, x), rtol=0, atol=0)
    for (key, value), ref in zip(sk.state_dict().items(), old.state_dict().values()):
        torch.testing.assert_close(value, ref, rtol=0, atol=0, msg=key)  # same statistics


@pytest.mark.parametrize('norm', ['BN', 'SyncBN'])
def test_batch_of_one_trains_with_the_running_statistics_of_the_fuse_norm(norm, device,
                                                                          warn_again):
    """One image: the fuse fc's BN sees [1, d, 1, 1] (one value per channel) and normalises it
    as in eval mode; the branch norms (one value per pixel) train on the batch as before."""
    torch.manual_seed(0)
    sk = randomize_bn(SKConv2d(32, 64, groups=4, norm_cfg=dict(type=norm))).train().to(device)
    ref = copy.deepcopy(sk)
    ref.attn.fuse.bn.eval()
    x = torch.randn(1, 32, 6, 5, device=device, requires_grad=True)
    with pytest.warns(UserWarning, match=r'SKAttention\(channels=64, num_branches=2\).*running '
                      r'statistics'):
        out = sk(x)
    torch.testing.assert_close(out, ref(x))
    out.square().mean().backward()
    for name, p in sk.named_parameters():  # DDP: every parameter, the fuse norm's affine too
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), name
    fuse_bn, branch_bn = sk.attn.fuse.bn, sk.branches[0].bn
    torch.testing.assert_close(fuse_bn.running_mean, ref.attn.fuse.bn.running_mean)
    torch.testing.assert_close(branch_bn.running_mean, ref.branches[0].bn.running_mean)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # shown once
        sk(x)


def test_batch_of_one_on_a_1x1_map_trains_the_branches_too(device, warn_again):
    sk = SKConv2d(32, 32, stride=2, groups=4).train().to(device)
    x = torch.randn(1, 32, 2, 2, device=device)  # stride 2: [1, 32, 1, 1] in every branch norm
    with pytest.warns(UserWarning, match=r'SKConv2d\(in_channels=32, out_channels=32\)'):
        out = sk(x)
    assert out.shape == (1, 32, 1, 1)
    out.sum().backward()
    assert all(p.grad is not None for p in sk.parameters())


def test_sync_bn_in_a_one_process_group_trains_a_batch_of_one(tmp_path, warn_again):
    """SyncBN in a process group of one: nothing to pool, so as BN with one image (CPU: gloo)."""
    torch.manual_seed(0)
    attn = SKAttention(32, norm_cfg=dict(type='SyncBN')).train()
    ref = copy.deepcopy(attn)
    ref.fuse.bn.eval()
    feats = [torch.randn(1, 32, 4, 4) for _ in range(2)]
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0,
                            world_size=1)
    try:
        with pytest.warns(UserWarning, match='running statistics'):
            out = attn(feats)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(out, ref(feats))
    out.sum().backward()
    assert all(p.grad is not None for p in attn.parameters())


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_conv_layer_sk(scope):
    init_default_scope(scope)
    sk = build_conv_layer(dict(type='SK', num_branches=3, reduction=8), 64, 128, 3, stride=2,
                          padding=2, dilation=2, groups=16, bias=False)
    assert isinstance(sk, SKConv2d) and len(sk.branches) == 3
    assert sk.branches[0].conv.groups == 16 and sk.branches[1].conv.dilation == (4, 4)
    assert sk(torch.randn(2, 64, 10, 10)).shape == (2, 128, 5, 5)


def test_conv_module_and_resnet_build_sk():
    """ConvModule(conv_cfg=SK) and mmdet's ResNet with SK as its 3x3 (the dcn= slot)."""
    from mmdet.models.backbones import ResNet
    cm = ConvModule(32, 32, 3, padding=1, conv_cfg=dict(type='SK'), norm_cfg=dict(type='BN'))
    assert isinstance(cm.conv, SKConv2d)
    assert cm(torch.randn(2, 32, 6, 6)).shape == (2, 32, 6, 6)
    net = ResNet(50, dcn=dict(type='SK'), stage_with_dcn=(False, False, False, True),
                 out_indices=(3, ))
    assert isinstance(net.layer4[0].conv2, SKConv2d)
    assert not isinstance(net.layer3[0].conv2, SKConv2d)
    assert net(torch.randn(2, 3, 64, 64))[0].shape == (2, 2048, 2, 2)


@pytest.mark.parametrize('args, kwargs, name', [
    ((32, 32, 1), {}, 'kernel_size'),
    ((32, 32, 3), dict(padding=1, dilation=2), 'padding'),
    ((32, 32, 3), dict(bias=True), 'bias'),
    ((32, 32, 3), dict(groups=5), 'groups'),
    ((32, 32, (3, 5)), {}, 'kernel_size'),
])
def test_bad_conv_layer_arguments(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        build_conv_layer(dict(type='SK'), *args, **kwargs)


@pytest.mark.parametrize('kwargs, name', [
    (dict(num_branches=0), 'num_branches'),
    (dict(groups=3), 'groups'),
    (dict(stride=0), 'stride'),
    (dict(reduction=0), 'reduction'),
    (dict(min_dim=0), 'min_dim'),
])
def test_bad_sk_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SKConv2d(32, 64, **kwargs)
