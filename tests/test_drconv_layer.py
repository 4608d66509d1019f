"""DRConv2d and its region-routed matmul: values, the surrogate gradient, fast == reference."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import DefaultScope

from plugin.analysis import module_complexity
from plugin.layers import DRConv2d
from plugin.layers import dr_conv_function
from plugin.layers.dr_conv_function import region_factor_conv, region_matmul, region_select


def grads(outputs, inputs, grad_out):
    return torch.autograd.grad(outputs, inputs, grad_out, allow_unused=False)


def region_inputs(seed, b=2, m=3, k=5, o=4, h=3, w=4):
    torch.manual_seed(seed)
    return tuple(torch.randn(*shape, dtype=torch.float64)
                 for shape in ((b, k, h, w), (b, m, o, k), (b, m, h, w)))


def every_region(cols, weight):
    return torch.einsum('bjok,bkhw->bjohw', weight, cols)  # [B, m, O, H, W]


def test_region_matmul_is_each_positions_region_matmul():
    cols, weight, guide = region_inputs(0)
    y = region_matmul(cols, weight, guide)
    region = guide.argmax(1)
    for s in range(2):
        for u in range(3):
            for v in range(4):
                torch.testing.assert_close(y[s, :, u, v],
                                           weight[s, region[s, u, v]] @ cols[s, :, u, v])
    torch.testing.assert_close(region_select(every_region(cols, weight), guide), y)


def test_guide_gradient_is_the_softmax_surrogate():
    cols, weight, guide = region_inputs(1, m=4, k=6, o=5)
    guide.requires_grad_()
    grad_y = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    (fast, ) = grads(region_matmul(cols, weight, guide), guide, grad_y)
    (ref, ) = grads(region_select(every_region(cols, weight), guide), guide, grad_y)
    # Eq. 6: the one-hot mask replaced by softmax(F); the true gradient of that is the surrogate
    soft = (torch.softmax(guide, 1).unsqueeze(2) * every_region(cols, weight)).sum(1)
    (expected, ) = grads(soft, guide, grad_y)
    torch.testing.assert_close(fast, expected)
    torch.testing.assert_close(ref, expected)
    # Eq. 7-8 written out at one position
    dot = (weight[1] @ cols[1, :, 2, 1]) @ grad_y[1, :, 2, 1]
    prob = torch.softmax(guide[1, :, 2, 1].detach(), 0)
    torch.testing.assert_close(fast[1, :, 2, 1], prob * (dot - prob @ dot))


def test_region_ops_gradcheck():
    cols, weight, guide = region_inputs(2, k=4, o=3, h=2, w=3)  # argmax: piecewise constant
    cols.requires_grad_()
    weight.requires_grad_()
    assert torch.autograd.gradcheck(lambda c, wt: region_matmul(c, wt, guide), (cols, weight))
    y_all = every_region(cols, weight).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda y: region_select(y, guide), (y_all, ))


def test_region_factor_conv_is_each_positions_region_filter():
    """y = W_j P at every position, W_j[:, :, t] = sum_q V[j, q] A[j, q, t] (A[j, g] = 1)."""
    torch.manual_seed(11)
    b, m, g, o, c = 2, 3, 2, 4, 5
    x = torch.randn(b, c, 6, 5, dtype=torch.float64)
    hidden = torch.rand(b, m * g, 3, 3, dtype=torch.float64)
    weight = torch.randn(m, g + 1, o, c, dtype=torch.float64)
    guide = torch.randn(b, m, 3, 3, dtype=torch.float64)
    geometry = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    y = region_factor_conv(x, hidden, weight, guide, *geometry.values())
    kernels = torch.cat([hidden.view(b, m, g, 3, 3), torch.ones(b, m, 1, 3, 3).double()], 2)
    filters = torch.einsum('jqoc,bjqhw->bjochw', weight, kernels)
    region = guide.argmax(1)
    for s in range(b):
        for j in range(m):
            conv = F.conv2d(x[s:s + 1], filters[s, j], None, 2, 1)[0]
            where = region[s] == j
            torch.testing.assert_close(y[s][:, where], conv[:, where])
    assert region.unique().numel() == m  # every region used


def test_region_factor_conv_gradcheck():
    torch.manual_seed(12)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    hidden = torch.rand(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    guide = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1))
    # the argmax is piecewise constant: the guide's gradient is the surrogate, checked elsewhere
    assert torch.autograd.gradcheck(
        lambda *a: region_factor_conv(*a, guide, *geometry), (x, hidden, weight))


LAYERS = [
    dict(kernel_size=3, padding=1, out_channels=32),
    dict(kernel_size=3, padding=1, out_channels=6),
    dict(kernel_size=3, padding=2, dilation=2, stride=2, out_channels=32, gen_channels=16),
    dict(kernel_size=3, stride=2, out_channels=6, guide_kernel_size=1, padding=1),
    dict(kernel_size=1, out_channels=6),
    dict(kernel_size=1, stride=2, out_channels=6, bias=True),
    dict(kernel_size=(3, 1), padding=(1, 0), out_channels=6, region_num=3),
    dict(kernel_size=3, padding=(2, 3), out_channels=6),  # border outputs read only padding
]


def force_path(layer, path):
    """Make the fast layer take ``path`` ('unfolded' or 'factorised'; 'chosen': its own choice)."""
    if path != 'chosen':
        layer.factorise = lambda positions, training: path == 'factorised'


def make_pair(in_channels=5, device='cpu', **kwargs):
    fast = DRConv2d(in_channels, **kwargs).double().to(device)
    ref = copy.deepcopy(fast)
    ref.impl = 'reference'
    return fast, ref


def test_fast_path_choice():
    big = 56 * 56  # output positions per image: the filters' generation hardly counts
    for kwargs in LAYERS[:2]:  # 3x3, g = 1: factorised, training and inference
        layer = DRConv2d(5, **kwargs)
        assert layer.factorise(big, True) and layer.factorise(big, False)
        assert layer.factorise(4, True) and layer.factorise(4, False)
    # a wide generator: (g + 1) (k k + O) and the surrogate's m (g + 1) O exceed k k O (3 + m)
    assert not DRConv2d(5, 32, 3, padding=1, gen_channels=128).factorise(big, True)
    # 1x1: no taps to factor out, unfolded on large maps; on a 2x2 map (a late stage) generating
    # m filters per image costs more than the factorisation
    one = DRConv2d(5, 32, 1)
    assert not one.factorise(big, True) and not one.factorise(big, False)
    assert one.factorise(4, False)
    stage4 = DRConv2d(512, 512, 3, padding=1)  # (g + 1) (k k + O) < k k O: always factorised
    assert all(stage4.factorise(p * p, False) for p in (7, 14, 56, 200))


@pytest.mark.parametrize('path', ['chosen', 'unfolded', 'factorised'])
@pytest.mark.parametrize('grad', [True, False], ids=['training', 'inference'])
@pytest.mark.parametrize('kwargs', LAYERS)
def test_output_is_the_convolution_with_each_positions_region_filter(kwargs, grad, path):
    torch.manual_seed(3)
    layer, _ = make_pair(**kwargs)
    force_path(layer, path)
    x = torch.randn(2, 5, 7, 8, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        y = layer(x).detach()
    with torch.no_grad():
        filters = layer.generator(x)  # [B, m, O, C, kh, kw]
        region = layer.guide(x).argmax(1)
    assert y.shape[2:] == region.shape[1:]
    bias = layer.bias if layer.bias is not None else torch.zeros(y.shape[1], dtype=y.dtype)
    for s in range(2):
        for j in range(layer.region_num):
            conv = F.conv2d(x[s:s + 1], filters[s, j], bias, layer.stride, layer.padding,
                            layer.dilation)[0]
            where = region[s] == j
            torch.testing.assert_close(y[s][:, where], conv[:, where])


@pytest.mark.parametrize('path', ['chosen', 'unfolded', 'factorised'])
@pytest.mark.parametrize('kwargs', LAYERS)
def test_fast_equals_reference_in_values_and_gradients(kwargs, path, device):
    torch.manual_seed(4)
    fast, ref = make_pair(device=device, **kwargs)
    force_path(fast, path)
    x = torch.randn(2, 5, 9, 7, dtype=torch.float64, device=device, requires_grad=True)
    y_fast, y_ref = fast(x), ref(x)
    torch.testing.assert_close(y_fast, y_ref)
    grad_y = torch.randn_like(y_ref)
    g_fast = grads(y_fast, [x, *fast.parameters()], grad_y)
    g_ref = grads(y_ref, [x, *ref.parameters()], grad_y)
    for (name, _), a, b in zip([('x', None), *fast.named_parameters()], g_fast, g_ref):
        torch.testing.assert_close(a, b, msg=name)


def test_fast_path_works_on_channels_last_and_strided_inputs():
    torch.manual_seed(5)
    fast, ref = make_pair(out_channels=32, kernel_size=3, padding=1)
    x = torch.randn(2, 5, 8, 10, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), ref(x))
    x = torch.randn(2, 10, 8, 10, dtype=torch.float64)[:, ::2]
    torch.testing.assert_close(fast(x), ref(x))


def test_guide_conv_learns_through_the_surrogate():
    """The guide conv's gradient is that of the softmax relaxation (Eq. 6-8), not zero."""
    torch.manual_seed(6)
    layer, _ = make_pair(out_channels=6, kernel_size=3, padding=1, region_num=4)
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    grad_y = torch.randn(2, 6, 6, 6, dtype=torch.float64)
    (fast, ) = grads(layer(x), layer.guide.weight, grad_y)
    filters = layer.generator(x).detach()
    y_all = torch.stack([
        F.conv2d(x[s:s + 1], filters[s].flatten(0, 1), None, 1, 1)[0].view(4, 6, 6, 6)
        for s in range(2)
    ])
    soft = (torch.softmax(layer.guide(x), 1).unsqueeze(2) * y_all).sum(1)
    (expected, ) = grads(soft, layer.guide.weight, grad_y)
    assert fast.abs().max() > 0
    torch.testing.assert_close(fast, expected)


def test_one_region_is_a_sample_specific_dynamic_conv():
    torch.manual_seed(7)
    layer = DRConv2d(4, 6, 3, padding=1, region_num=1, bias=True)
    assert layer.guide is None
    x = torch.randn(3, 4, 5, 5)
    y = layer(x)
    filters = layer.generator(x)
    for s in range(3):
        torch.testing.assert_close(y[s], F.conv2d(x[s:s + 1], filters[s, 0], layer.bias,
                                                  padding=1)[0])
    assert not torch.allclose(filters[0], filters[1])  # sample-specific


@pytest.mark.parametrize('gen_channels', [2, 18])
def test_generated_taps_vary_only_with_the_inputs_layout(gen_channels):
    """The paper's generator (pool to k x k, then 1x1 convs) has no parameter of its own per
    tap: on an input that is the same everywhere every generated k x k filter is flat, however
    wide the generator (docs/drconv.md, "the taps of a generated filter")."""
    torch.manual_seed(0)
    layer = DRConv2d(4, 6, 3, padding=1, region_num=2, gen_channels=gen_channels)
    uniform = layer.generator(torch.randn(2, 4, 1, 1).expand(2, 4, 9, 9))  # [B, m, O, C, k, k]
    torch.testing.assert_close(uniform, uniform[..., :1, :1].expand_as(uniform))
    varied = layer.generator(torch.randn(2, 4, 9, 9))
    assert not torch.allclose(varied, varied[..., :1, :1].expand_as(varied))


@pytest.mark.parametrize('path', ['unfolded', 'factorised'])
@pytest.mark.parametrize('kwargs', [LAYERS[0], LAYERS[1], LAYERS[4]])
def test_every_parameter_gets_a_gradient(kwargs, path, device):
    """DDP needs a gradient for every parameter, also for regions no position chose."""
    layer = DRConv2d(5, **kwargs).to(device)
    force_path(layer, path)
    layer(torch.randn(2, 5, 3, 3, device=device)).sum().backward()
    assert [n for n, p in layer.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('path', ['unfolded', 'factorised'])
@pytest.mark.parametrize('kwargs', [LAYERS[0], LAYERS[1]])
def test_runs_under_autocast(kwargs, path, dtype, device):
    torch.manual_seed(8)
    layer = DRConv2d(5, **kwargs).to(device)
    force_path(layer, path)
    x = torch.randn(2, 5, 8, 8, device=device, requires_grad=True)
    with torch.autocast(device.type, dtype=dtype):
        y = layer(x)
    assert y.dtype == dtype
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    with torch.no_grad():
        torch.testing.assert_close(y.float(), layer(x), atol=0.1, rtol=0.1)


@pytest.mark.parametrize('path', ['unfolded', 'factorised'])
@pytest.mark.parametrize('kept', [1 << 22, 0], ids=['buffers kept', 'buffers per call'])
def test_fast_paths_in_chunks_and_reused_buffers(monkeypatch, kept, path):
    """Regions split across chunks of a few rows, and layers of other sizes using the same
    scratch buffers in between, change nothing."""
    # 7 rows a chunk factorised (m (g + 1) C elements a row), 11 unfolded (m O)
    monkeypatch.setitem(dr_conv_function.CHUNK_ELEMENTS, 'cpu', 8 * 2 * 5 * 7)
    monkeypatch.setattr(dr_conv_function, 'WORKSPACE_ELEMENTS', kept)
    torch.manual_seed(13)
    fast, ref = make_pair(out_channels=6, kernel_size=3, padding=1)
    other = DRConv2d(5, 9, 3, padding=2, dilation=2).double()
    force_path(fast, path)
    force_path(other, path)
    x = torch.randn(2, 5, 9, 7, dtype=torch.float64, requires_grad=True)
    y_fast = fast(x)
    other(torch.randn(3, 5, 12, 12, dtype=torch.float64)).sum().backward()
    y_ref = ref(x)
    torch.testing.assert_close(y_fast, y_ref)
    grad_y = torch.randn_like(y_ref)
    for a, b in zip(grads(y_fast, [x, *fast.parameters()], grad_y),
                    grads(y_ref, [x, *ref.parameters()], grad_y)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_builds_as_a_conv_layer(scope):
    with DefaultScope.overwrite_default_scope(scope):
        conv = build_conv_layer(dict(type='DRConv', region_num=4), 8, 16, 3, stride=2, padding=1,
                                dilation=1, groups=1, bias=True)
        module = ConvModule(8, 16, 3, padding=1, conv_cfg=dict(type='DRConv', region_num=2),
                            norm_cfg=dict(type='BN'))
    assert isinstance(conv, DRConv2d) and conv.region_num == 4 and conv.bias is not None
    assert conv(torch.randn(2, 8, 9, 9)).shape == (2, 16, 5, 5)
    assert module(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)
    assert {'conv.guide.weight', 'conv.generator.weight', 'conv.generator.bias',
            'conv.generator.reduce.weight', 'bn.weight'} <= set(module.state_dict())


@pytest.mark.parametrize('kwargs, message', [
    (dict(region_num=0), 'region_num'),
    (dict(in_channels=0), 'in_channels'),
    (dict(groups=2), 'groups'),
    (dict(guide_kernel_size=2), 'guide_kernel_size'),  # padding 1.5
    (dict(padding=0, guide_kernel_size=1), 'guide_kernel_size'),  # padding -1
    (dict(gen_channels=12), 'gen_channels'),
    (dict(stride=0), 'stride'),
    (dict(impl='loop'), 'impl'),
])
def test_bad_arguments_raise(kwargs, message):
    args = dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, region_num=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DRConv2d(**args)


def test_complexity_counts_the_path_taken():
    layer = DRConv2d(16, 16, 3, padding=1)  # inference: factorised
    c = module_complexity(layer, torch.randn(1, 16, 20, 20))
    assert not any('PythonOp' in op for op in c['uncounted'])
    factorised = 20 * 20 * 16 * 2 * (9 + 16)  # (g + 1) (k k + O) per position and channel
    guide = 20 * 20 * 16 * 8 * 9
    assert factorised + guide < c['flops'] < 1.1 * (factorised + guide)
    layer = DRConv2d(16, 16, 1)  # a 1x1 on a large map: unfolded, the cost of a 1x1 conv
    assert not layer.factorise(56 * 56, False)
    c = module_complexity(layer, torch.randn(1, 16, 56, 56))
    assert not any('PythonOp' in op or 'addcmul' in op for op in c['uncounted'])
    conv, guide = 56 * 56 * 16 * 16, 56 * 56 * 16 * 8
    generator = 8 * 16 * 16  # m O C k k g: the filters' elements, g multiply-adds each
    assert conv + guide + generator < c['flops'] < 1.1 * (conv + guide)
