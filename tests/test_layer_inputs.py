"""Every layer on every device: its input is checked (one ValueError naming the argument), an
empty batch gives an empty output that backpropagates, and autocast trains."""
import pytest
import torch

import plugin  # noqa: F401
from conftest import autocast_dtype
from plugin.layers import (DRConv2d, DynamicStrideConv2d, SKAttention, SKConv2d, TiedBlockConv2d,
                           TiedGCB, TiedLinear, TiedSE, dsc_conv2d)
from plugin.necks import SKFPN

# name: (layer, input channels, argument the error names)
LAYERS = {
    'TBC': (lambda: TiedBlockConv2d(16, 32, 3, padding=1, B=4), 16, 'in_channels'),
    'TGC': (lambda: TiedBlockConv2d(16, 32, 3, stride=2, padding=1, B=2, groups=4), 16,
            'in_channels'),
    'TiedSE': (lambda: TiedSE(32, B=4, reduction=2), 32, 'in_channels'),
    'TiedGCB': (lambda: TiedGCB(32, ratio=1 / 4, B=2), 32, 'in_channels'),
    'DRConv': (lambda: DRConv2d(16, 16, 3, padding=1, region_num=4), 16, 'in_channels'),
    'DRConv-1x1': (lambda: DRConv2d(16, 24, 1, region_num=4), 16, 'in_channels'),
    'DRConv-reference': (lambda: DRConv2d(16, 16, 3, padding=1, region_num=4, impl='reference'),
                         16, 'in_channels'),
    'DRConv-m1': (lambda: DRConv2d(16, 8, 3, padding=1, region_num=1), 16, 'in_channels'),
    'DSC': (lambda: DynamicStrideConv2d(16, 8, 3, stride=2, padding=1), 16, 'in_channels'),
    'DSC-few-channels': (lambda: DynamicStrideConv2d(4, 8, 3, stride=2, padding=1), 4,
                         'in_channels'),
    'SK': (lambda: SKConv2d(16, 32, groups=4), 16, 'in_channels'),
    'SK-one-branch': (lambda: SKConv2d(16, 32, num_branches=1, groups=4), 16, 'in_channels'),
}


def build(name, device):
    make, channels, _ = LAYERS[name]
    torch.manual_seed(0)
    layer = make().to(device)
    for m in layer.modules():  # DSC's offsets and TiedGCB's last conv start at zero
        if isinstance(m, (DynamicStrideConv2d, TiedGCB)):
            for p in m.parameters():
                torch.nn.init.normal_(p, std=0.1)
    return layer, channels


@pytest.mark.parametrize('name', LAYERS)
def test_wrong_channels_or_ndim_raise_value_error_naming_in_channels(name, device):
    layer, channels = build(name, device)
    arg = LAYERS[name][2]
    wrong = rf'{arg}={channels}.*got shape \[2, {channels + 2}, 8, 8\]'
    with pytest.raises(ValueError, match=wrong):
        layer(torch.randn(2, channels + 2, 8, 8, device=device))
    with pytest.raises(ValueError, match=rf'{arg}={channels}.*got shape \[{channels}, 8, 8\]'):
        layer(torch.randn(channels, 8, 8, device=device))


def test_tfc_and_attention_and_neck_inputs_are_checked(device):
    with pytest.raises(ValueError, match=r'in_features=24.*got shape \[3, 20\]'):
        TiedLinear(24, 16, B=4).to(device)(torch.randn(3, 20, device=device))
    attn = SKAttention(32, num_branches=2).to(device)
    feat = torch.randn(2, 32, 4, 4, device=device)
    with pytest.raises(ValueError, match='num_branches=2 inputs, got 3'):
        attn([feat] * 3)
    with pytest.raises(ValueError, match=r'channels=32.*got shape \[2, 16, 4, 4\]'):
        attn([feat, feat[:, :16]])
    neck = SKFPN([8, 16], 32, num_outs=2).to(device)
    with pytest.raises(ValueError, match=r'in_channels\[1\]=16.*got shape \[1, 12, 4, 4\]'):
        neck([torch.randn(1, 8, 8, 8, device=device), torch.randn(1, 12, 4, 4, device=device)])


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('name', LAYERS)
def test_empty_batch_gives_empty_output_that_backpropagates(name, train, device):
    layer, channels = build(name, device)
    layer.train(train)
    x = torch.randn(2, channels, 9, 8, device=device)
    with torch.no_grad():
        full = layer(x)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    empty = x[:0].clone().requires_grad_()
    out = layer(empty)
    assert out.shape == (0, *full.shape[1:])
    assert out.dtype == full.dtype and out.device == full.device
    out.sum().backward()
    assert empty.grad is not None and empty.grad.shape == empty.shape
    for key, p in layer.named_parameters():  # DDP: every parameter gets a (zero) gradient
        assert p.grad is not None and not p.grad.any(), key
    for key, value in layer.state_dict().items():  # no statistics from an empty batch
        if not key.endswith('num_batches_tracked'):
            torch.testing.assert_close(value, state[key], msg=key)
    dtype = autocast_dtype(device)
    with torch.autocast(device.type, dtype=dtype):
        full, out = layer(x), layer(x[:0])
    assert out.shape == (0, *full.shape[1:]) and out.dtype == full.dtype


@pytest.mark.parametrize('shape', [(0, 24), (0, 5, 24), (3, 0, 24)])
def test_tfc_empty_leading_dims(shape, device):
    fc = TiedLinear(24, 16, B=4).to(device)
    x = torch.randn(*shape, device=device, requires_grad=True)
    out = fc(x)
    assert out.shape == (*shape[:-1], 16)
    out.sum().backward()
    assert x.grad.shape == x.shape and not fc.weight.grad.any()


def test_dsc_conv2d_empty_batch_backpropagates_to_its_positions(device):
    x = torch.randn(0, 16, 8, 8, device=device, requires_grad=True)
    weight = torch.randn(8, 16, 3, 3, device=device, requires_grad=True)
    positions = torch.zeros(0, 4, 4, 2, device=device, requires_grad=True)
    out = dsc_conv2d(x, weight, None, positions)
    assert out.shape == (0, 8, 4, 4)
    out.sum().backward()
    assert not weight.grad.any() and positions.grad.shape == positions.shape


@pytest.mark.parametrize('name', LAYERS)
def test_autocast_training_step(name, device):
    """fp16 on CUDA, bf16 on CPU (AMP's dtypes): finite output and gradients in every
    parameter, close to float32 on average (a region or position may flip at a near tie)."""
    layer, channels = build(name, device)
    layer.train()
    x = torch.randn(2, channels, 9, 8, device=device, requires_grad=True)
    dtype = autocast_dtype(device)
    with torch.autocast(device.type, dtype=dtype):
        out = layer(x)
    assert out.dtype in (dtype, torch.float32)  # TiedSE / TiedGCB end in float32 ops
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for key, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), key
    layer.eval()
    with torch.no_grad():
        with torch.autocast(device.type, dtype=dtype):
            low = layer(x)
        ref = layer(x)
    assert (low.float() - ref).abs().mean() <= 0.02 * ref.abs().mean() + 1e-3
