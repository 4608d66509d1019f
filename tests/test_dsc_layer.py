"""DynamicStrideConv2d / dsc_conv2d against nn.Conv2d, a per-tap grid_sample loop and mmcv's
DeformConv2d with the displacement repeated for every tap."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmengine.registry import init_default_scope

import plugin.layers.dynamic_stride_conv as dsc_module
from conftest import autocast_dtype
from plugin.analysis import module_complexity
from plugin.layers import DynamicStrideConv2d, dsc_conv2d
from plugin.layers.dynamic_stride_conv import grid_centres

PATHS = {'gather': 0, 'grid_sample': 10**6}  # GATHER_MIN_CHANNELS forcing each implementation


@pytest.fixture(params=sorted(PATHS))
def path(request, monkeypatch):
    monkeypatch.setattr(dsc_module, 'GATHER_MIN_CHANNELS', PATHS[request.param])
    return request.param


def plain_positions(n, ho, wo, k, s, p, d, dtype=torch.float64):
    """(n, ho, wo, 2) centres of nn.Conv2d(k, s, p, d): s*i - p + d*(k-1)/2."""
    cx = grid_centres(wo, k[1], s[1], p[1], d[1], dtype=dtype)
    cy = grid_centres(ho, k[0], s[0], p[0], d[0], dtype=dtype)
    return torch.stack(torch.meshgrid(cx, cy, indexing='xy'), -1).expand(n, ho, wo, 2)


def reference(x, weight, bias, positions, dilation=(1, 1), groups=1):
    """Eq. D1 as a loop over taps: bilinear sample (zero outside) at centre + d*(k - (K-1)/2)."""
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    out = 0
    for i in range(kh):
        for j in range(kw):
            px = positions[..., 0] + (j - (kw - 1) / 2) * dilation[1]
            py = positions[..., 1] + (i - (kh - 1) / 2) * dilation[0]
            grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], -1).to(x.dtype)
            tap = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
            out = out + F.conv2d(tap, weight[:, :, i:i + 1, j:j + 1], groups=groups)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


GEOMETRIES = [  # kernel, stride, padding, dilation, groups
    (3, 2, 1, 1, 1), (1, 2, 0, 1, 1), (7, 2, 3, 1, 1), (3, 2, 2, 2, 2),
    ((3, 1), (2, 1), (1, 0), 1, 1), (2, 2, 0, 1, 1), (3, 3, 0, 1, 1), (3, 1, 1, 1, 1)
]


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=str)
def test_zero_offsets_equal_conv2d_values_and_gradients(geometry, path, device):
    k, s, p, d, g = geometry
    ok = 2 if k == 2 else 3
    layer = DynamicStrideConv2d(4, 6, k, s, p, d, g, bias=True, offset_kernel_size=ok)
    layer = layer.double().to(device)
    conv = torch.nn.Conv2d(4, 6, k, s, p, d, g, bias=True).double().to(device)
    conv.load_state_dict({n: v for n, v in layer.state_dict().items() if 'offset' not in n})
    x = torch.randn(2, 4, 11, 10, dtype=torch.float64, device=device, requires_grad=True)
    y, y0 = layer(x), conv(x)
    assert y.shape == y0.shape
    torch.testing.assert_close(y, y0, rtol=0, atol=1e-12)
    grad = torch.randn_like(y0)
    got = torch.autograd.grad(y, (x, layer.weight, layer.bias), grad)
    want = torch.autograd.grad(y0, (x, conv.weight, conv.bias), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


@pytest.mark.parametrize('groups,dilation', [(1, 1), (2, 2)])
def test_random_positions_match_tap_loop_and_gradcheck(groups, dilation, path):
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 4 // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    # centres anywhere in and around the image: off-grid, some taps (or all) outside
    positions = (torch.rand(1, 2, 3, 2, dtype=torch.float64) * 10 - 2).requires_grad_()
    dil = (dilation, dilation)
    out = dsc_conv2d(x, weight, bias, positions, dil, groups)
    torch.testing.assert_close(out, reference(x, weight, bias, positions, dil, groups))
    assert torch.autograd.gradcheck(
        lambda *a: dsc_conv2d(*a, dil, groups), (x, weight, bias, positions), fast_mode=True)


def test_matches_mmcv_deform_conv_with_repeated_offset():
    from mmcv.ops import deform_conv2d
    torch.manual_seed(1)
    x = torch.randn(2, 16, 12, 12)
    weight = torch.randn(8, 16, 3, 3)
    plain = plain_positions(2, 6, 6, (3, 3), (2, 2), (1, 1), (1, 1), torch.float32)
    delta = (torch.rand(2, 6, 6, 2) - 0.5) * 5  # some centres leave the image: zeros there
    out = dsc_conv2d(x, weight, None, plain + delta)
    offset = delta.flip(-1).permute(0, 3, 1, 2).repeat(1, 9, 1, 1)  # (dy, dx) for each tap
    ref = deform_conv2d(x, offset, weight, stride=2, padding=1)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_known_offset_moves_the_sampling_exactly(path):
    """A delta image read by a centre-tap kernel: the output is the bilinear hat of the shift."""
    layer = DynamicStrideConv2d(1, 1, 3, stride=2, padding=1, bias=False, max_displacement=1.0)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 1, 1] = 1
        want = torch.tensor([0.75, -0.5])  # (dx, dy) in pixels; reach = 1.0 * stride = 2 px
        layer.conv_offset.bias.copy_(torch.atanh(want / 2))
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 6, 9] = 1
    y = layer(x)[0, 0]
    plain = plain_positions(1, 8, 8, (3, 3), (2, 2), (1, 1), (1, 1), torch.float32)
    shift = (layer.positions - plain)[0, 2:-2, 2:-2]  # interior: the border bounds do not bite
    torch.testing.assert_close(shift, want.expand_as(shift))
    # y(i, j) = hat(2j + 0.75 - 9) * hat(2i - 0.5 - 6), hat(t) = max(0, 1 - |t|): bilinear weights
    hat = lambda t: (1 - t.abs()).clamp(min=0)  # noqa: E731
    idx = torch.arange(8.0)
    expected = hat(2 * idx[:, None] - 0.5 - 6) * hat(2 * idx[None] + 0.75 - 9)
    torch.testing.assert_close(y, expected)
    assert y[3, 4] == 0.75 * 0.5 and int((y > 0).sum()) == 1
    # an integer shift is an exact translation of the plain strided conv
    positions = plain_positions(1, 8, 8, (3, 3), (2, 2), (1, 1), (1, 1), torch.float32) + \
        torch.tensor([1.0, 0.0])
    img = torch.randn(1, 3, 16, 17)
    w = torch.randn(5, 3, 3, 3)
    shifted = F.conv2d(F.pad(img, (0, 2, 1, 1)), w, stride=2)  # taps at 2j - 1 + k + 1
    torch.testing.assert_close(dsc_conv2d(img, w, None, positions), shifted[..., :8])


def test_gradients_reach_every_parameter_including_the_offset_branch(path, device):
    layer = DynamicStrideConv2d(16, 8, 3, stride=2, padding=1).to(device)
    assert layer.conv_offset.weight.abs().sum() == 0 and layer.conv_offset.bias.abs().sum() == 0
    x = torch.randn(2, 16, 9, 9, device=device, requires_grad=True)
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize('max_displacement', [0.25, 0.5, 1.0])
def test_positions_stay_inside_the_image_and_within_reach(max_displacement):
    layer = DynamicStrideConv2d(16, 8, 3, stride=2, padding=1, max_displacement=max_displacement)
    with torch.no_grad():
        layer.conv_offset.weight.normal_(std=3.0)
        layer.conv_offset.bias.uniform_(-5, 5)
    x = torch.randn(2, 16, 13, 10) * 10
    layer(x)
    pos = layer.positions
    assert pos.shape == (2, 7, 5, 2)
    assert (pos[..., 0] >= 0).all() and (pos[..., 0] <= 9).all()
    assert (pos[..., 1] >= 0).all() and (pos[..., 1] <= 12).all()
    delta = pos - plain_positions(2, 7, 5, (3, 3), (2, 2), (1, 1), (1, 1), torch.float32)
    assert delta.abs().max() <= max_displacement * 2 + 1e-6
    assert delta.abs().max() > 0.2 * max_displacement * 2  # the branch does move them
    if max_displacement <= 0.5:  # neighbours may meet (tanh saturates) but never cross
        assert (pos[:, :, 1:, 0] >= pos[:, :, :-1, 0]).all()
        assert (pos[:, 1:, :, 1] >= pos[:, :-1, :, 1]).all()


def test_positions_are_exposed_detached_and_hooks_get_them_live():
    layer = DynamicStrideConv2d(16, 8, 3, stride=2, padding=1)
    seen = []
    handle = layer.register_position_hook(lambda module, pos: seen.append(pos))
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    layer(x)
    assert len(seen) == 1 and seen[0].requires_grad and seen[0].grad_fn is not None
    assert not layer.positions.requires_grad
    torch.testing.assert_close(layer.positions, seen[0].detach())
    # the layer itself holds no autograd graph after the forward
    assert not any(isinstance(v, torch.Tensor) and v.grad_fn is not None
                   for v in vars(layer).values())
    handle.remove()
    layer(x)
    assert len(seen) == 1


def test_autocast_runs_and_stays_close(path, device):
    """AMP's dtype of the device: bf16 on CPU, fp16 on CUDA."""
    layer = DynamicStrideConv2d(16, 8, 3, stride=2, padding=1).to(device)
    with torch.no_grad():
        layer.conv_offset.weight.normal_(std=0.05)
    x = torch.randn(2, 16, 10, 10, device=device, requires_grad=True)
    ref = layer(x)
    dtype = autocast_dtype(device)
    with torch.autocast(device.type, dtype=dtype):
        out = layer(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)
    out.float().sum().backward()
    assert layer.conv_offset.weight.grad is not None and x.grad.dtype == torch.float32


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_builds_as_a_conv_layer_in_both_scopes(scope):
    init_default_scope(scope)
    layer = build_conv_layer(dict(type='DSC', max_displacement=0.3, offset_kernel_size=1), 16, 32,
                             3, stride=2, padding=1, bias=False)
    assert isinstance(layer, DynamicStrideConv2d) and layer.bias is None
    assert layer.max_displacement == 0.3 and layer.conv_offset.kernel_size == (1, 1)
    assert layer(torch.randn(1, 16, 9, 9)).shape == (1, 32, 5, 5)
    assert set(layer.state_dict()) == {'weight', 'conv_offset.weight', 'conv_offset.bias'}


@pytest.mark.parametrize('kwargs,name', [
    (dict(kernel_size=0), 'kernel_size'), (dict(stride=0), 'stride'), (dict(padding=-1), 'padding'),
    (dict(padding='same'), 'padding'), (dict(dilation=(1, 0)), 'dilation'),
    (dict(max_displacement=0), 'max_displacement'), (dict(max_displacement=-1), 'max_displacement'),
    (dict(offset_kernel_size=0), 'offset_kernel_size'),
    (dict(offset_kernel_size=2), 'offset_kernel_size'),  # cannot be centred on a 3x3 kernel
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        DynamicStrideConv2d(**args)


def test_flops_count_the_gemm_the_bilinear_gather_and_the_offset_branch():
    layer = DynamicStrideConv2d(16, 32, 3, stride=2, padding=1, bias=False)
    x = torch.randn(1, 16, 20, 20)
    got = module_complexity(layer, x)
    conv = module_complexity(torch.nn.Conv2d(16, 32, 3, 2, 1, bias=False), x)['flops']
    branch = module_complexity(layer.conv_offset, x)['flops']
    gather = 10 * 10 * 9 * 4 * 16  # 4 multiply-adds per tap, channel and output position
    assert got['flops'] == conv + branch + gather
    assert not any('embedding' in op or op == 'aten::mm' for op in got['uncounted'])
    assert got['params'] == 32 * 16 * 9 + 2 * 16 * 9 + 2
