"""Every layer exports to ONNX and computes in onnxruntime what it computes in PyTorch (eval mode,
fp32, max abs difference <= 1e-4) at a fixed shape and, exported with dynamic dims, at two sizes;
and export_onnx's errors: train mode, opset, a module without an ONNX form, no half-written file."""
import os

import numpy as np
import pytest
import torch
from torch import nn

import plugin  # noqa: F401
from plugin.deployment import (SUPPORTED_OPSETS, OnnxExportError, export_onnx, max_abs_diff,
                               run_onnxruntime)
from plugin.layers import (DRConv2d, DynamicStrideConv2d, SKAttention, SKConv2d, TiedBlockConv2d,
                           TiedGCB, TiedLinear, TiedSE)
from plugin.necks import SKFPN

TOL = 1e-4

# name: (layer, input shape at export, a second input shape for the dynamic export)
LAYERS = {
    'TBC': (lambda: TiedBlockConv2d(16, 32, 3, padding=1, B=4), (2, 16, 12, 10), (1, 16, 7, 15)),
    'TGC-group': (lambda: TiedBlockConv2d(16, 32, 3, stride=2, padding=1, B=2, groups=4),
                  (2, 16, 12, 10), (3, 16, 9, 16)),
    'TGC-block': (lambda: TiedBlockConv2d(16, 32, 3, padding=1, B=2, groups=4, order='block'),
                  (2, 16, 8, 8), (1, 16, 11, 6)),
    'TFC': (lambda: TiedLinear(24, 16, B=4), (3, 24), (5, 24)),
    'TiedSE': (lambda: TiedSE(32, B=4, reduction=2), (2, 32, 8, 8), (1, 32, 5, 11)),
    'TiedGCB': (lambda: TiedGCB(32, ratio=1 / 4, B=2), (2, 32, 8, 8), (1, 32, 5, 11)),
    'TiedGCB-avg-mul': (lambda: TiedGCB(32, ratio=1 / 4, B=2, pooling_type='avg',
                                        fusion_types=('channel_add', 'channel_mul')),
                        (2, 32, 8, 8), (1, 32, 5, 11)),
    'DRConv': (lambda: DRConv2d(16, 16, 3, padding=1, region_num=4), (2, 16, 12, 10),
               (1, 16, 7, 17)),
    'DRConv-stride-dilation': (
        lambda: DRConv2d(16, 8, 3, stride=2, padding=2, dilation=2, region_num=3,
                         gen_channels=6), (2, 16, 13, 10), (1, 16, 9, 16)),
    'DRConv-1x1': (lambda: DRConv2d(16, 24, 1, region_num=4), (2, 16, 8, 8), (1, 16, 5, 9)),
    'DRConv-reference': (lambda: DRConv2d(16, 16, 3, padding=1, region_num=4, impl='reference'),
                         (2, 16, 8, 8), (1, 16, 11, 7)),
    'DRConv-m1': (lambda: DRConv2d(16, 8, 3, padding=1, region_num=1), (2, 16, 8, 8),
                  (1, 16, 11, 7)),
    'DSC': (lambda: DynamicStrideConv2d(16, 8, 3, stride=2, padding=1), (2, 16, 12, 10),
            (1, 16, 9, 15)),
    'DSC-groups': (lambda: DynamicStrideConv2d(32, 16, 3, stride=2, padding=1, groups=2),
                   (2, 32, 8, 8), (1, 32, 11, 9)),
    'DSC-few-channels': (lambda: DynamicStrideConv2d(4, 8, 3, stride=2, padding=1),
                         (2, 4, 12, 10), (1, 4, 9, 15)),
    'SK': (lambda: SKConv2d(16, 32, stride=2, groups=4), (2, 16, 12, 10), (1, 16, 9, 15)),
    'SK-one-branch': (lambda: SKConv2d(16, 32, num_branches=1, groups=4), (2, 16, 8, 8),
                      (1, 16, 5, 9)),
}


def seeded(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def randomise(module: nn.Module, seed: int = 1) -> nn.Module:
    """Weights away from their zero inits (DSC offsets, TiedGCB's last conv) and batch norms
    with running statistics that are not the identity; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (DynamicStrideConv2d, TiedGCB)):
                for p in m.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return module.eval()


def assert_exports(model, inputs, path, *others, dynamic=False):
    """Export ``model`` on ``inputs``; onnxruntime matches PyTorch on them and on ``others``."""
    export_onnx(model, inputs, path, dynamic=dynamic)
    for x in (inputs, *others):
        args = (x, ) if isinstance(x, torch.Tensor) else x
        with torch.no_grad():
            ref = model(*args)
        diff = max_abs_diff(ref, run_onnxruntime(path, x))
        assert diff <= TOL, f'{type(model).__name__}: max abs diff {diff:.2e}'


@pytest.mark.parametrize('dynamic', [False, True], ids=['fixed', 'dynamic'])
@pytest.mark.parametrize('name', LAYERS)
def test_layer_exports_and_matches_pytorch(name, dynamic, tmp_path):
    make, shape, other = LAYERS[name]
    torch.manual_seed(0)
    layer = randomise(make())
    others = [seeded(*other, seed=2)] if dynamic else []
    assert_exports(layer, seeded(*shape), tmp_path / f'{name}.onnx', *others, dynamic=dynamic)


def test_eager_drconv_paths_are_the_ones_export_replaces():
    """The fast layers take their routed paths in eager eval (what the export form replaces):
    the 3x3 DRConv factorised, the 1x1 unfolded."""
    assert DRConv2d(16, 16, 3, padding=1, region_num=4).factorise(96, training=False)
    assert not DRConv2d(16, 24, 1, region_num=4).factorise(64, training=False)


@pytest.mark.parametrize('sk_fusion', [False, True])
def test_sk_fpn_and_sk_attention_export(sk_fusion, tmp_path):
    torch.manual_seed(0)
    neck = randomise(SKFPN([8, 16, 32], 16, 5, add_extra_convs='on_input',
                           sk_cfg=dict(groups=4, min_dim=8), sk_fusion=sk_fusion))
    feats = [seeded(2, c, s, s + 2, seed=i) for i, (c, s) in enumerate([(8, 16), (16, 8),
                                                                         (32, 4)])]
    other = [seeded(1, c, s, s, seed=i) for i, (c, s) in enumerate([(8, 20), (16, 10), (32, 5)])]
    assert_exports(neck, (feats, ), tmp_path / 'skfpn.onnx', (other, ), dynamic=True)
    attn = randomise(SKAttention(16, num_branches=3, min_dim=8))
    branches = [seeded(2, 16, 6, 5, seed=i) for i in range(3)]
    assert_exports(attn, (branches, ), tmp_path / 'attn.onnx')


class Unexportable(nn.Module):
    """``torch.bincount`` has no ONNX form."""

    def forward(self, x):
        return x + torch.bincount(x.flatten().long().clamp(0, 3), minlength=4).sum()


class Raises(nn.Module):
    def forward(self, x):
        raise RuntimeError('no way through')


class _OldSqueeze(torch.autograd.Function):
    """An op whose ``symbolic`` writes opset-11 ``Squeeze`` (``axes`` an attribute), as mmcv
    2.1's ``RoIAlign`` does: the exporter takes it, ``onnx.checker`` refuses it at opset 17."""

    @staticmethod
    def forward(ctx, x):
        return x.squeeze(0)

    @staticmethod
    def symbolic(g, x):
        return g.op('Squeeze', x, axes_i=[0])


class OldSqueeze(nn.Module):
    def forward(self, x):
        return _OldSqueeze.apply(x)


def test_graph_refused_by_onnx_checker_leaves_no_file(tmp_path):
    with pytest.raises(OnnxExportError, match=r'^the model \(OldSqueeze\): the exported graph '
                                              r'fails onnx.checker: .*axes'):
        export_onnx(OldSqueeze().eval(), seeded(1, 4, 6, 6), tmp_path / 'm.onnx')
    assert os.listdir(tmp_path) == []


def test_train_mode_is_refused_naming_the_module(tmp_path):
    model = nn.Sequential(TiedBlockConv2d(8, 8, 3, padding=1, B=2), nn.BatchNorm2d(8)).eval()
    model[1].train()
    with pytest.raises(OnnxExportError, match=r'^1 \(BatchNorm2d\) is in train mode'):
        export_onnx(model, seeded(1, 8, 6, 6), tmp_path / 'm.onnx')
    with pytest.raises(OnnxExportError, match=r'the model \(Sequential\) is in train mode'):
        export_onnx(model.train(), seeded(1, 8, 6, 6), tmp_path / 'm.onnx')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('opset', [SUPPORTED_OPSETS.start - 1, SUPPORTED_OPSETS.stop, '17'])
def test_unsupported_opset_is_refused(opset, tmp_path):
    with pytest.raises(OnnxExportError, match=rf"opset={opset!r} is not supported"):
        export_onnx(nn.Conv2d(4, 4, 1).eval(), seeded(1, 4, 6, 6), tmp_path / 'm.onnx',
                    opset=opset)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('bad, reason', [(Unexportable, "aten::bincount"),
                                         (Raises, 'no way through')])
def test_module_without_onnx_form_is_named_and_no_file_is_left(bad, reason, tmp_path):
    model = nn.Sequential()
    model.add_module('stem', nn.Conv2d(4, 4, 1))
    model.add_module('body', nn.Sequential(nn.ReLU(), bad()))
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'an earlier export')
    (tmp_path / '.m.onnx.partial').write_bytes(b'left by a killed export')
    with pytest.raises(OnnxExportError,
                       match=rf'^body\.1 \({bad.__name__}\) cannot be exported.*{reason}'):
        export_onnx(model.eval(), seeded(1, 4, 6, 6), out)
    assert os.listdir(tmp_path) == ['m.onnx'] and out.read_bytes() == b'an earlier export'


def test_partial_file_of_an_earlier_run_is_replaced(tmp_path):
    (tmp_path / '.m.onnx.partial').write_bytes(b'left by a killed export')
    path = export_onnx(nn.Conv2d(4, 4, 1).eval(), seeded(1, 4, 6, 6), tmp_path / 'm.onnx')
    assert path == str(tmp_path / 'm.onnx') and os.listdir(tmp_path) == ['m.onnx']


def test_names_and_comparison_errors(tmp_path):
    with pytest.raises(OnnxExportError, match='input_names has 2 names for 1 input tensors'):
        export_onnx(nn.Conv2d(4, 4, 1).eval(), seeded(1, 4, 6, 6), tmp_path / 'm.onnx',
                    input_names=('a', 'b'))
    with pytest.raises(ValueError, match='2 PyTorch outputs against 1 onnxruntime outputs'):
        max_abs_diff((torch.zeros(2), torch.zeros(2)), [np.zeros(2)])
    with pytest.raises(ValueError, match=r'output 0: shape \[2\] in PyTorch, \[3\]'):
        max_abs_diff(torch.zeros(2), [np.zeros(3)])
    nan = max_abs_diff([torch.zeros(2), torch.ones(1)], [np.zeros(2), np.array([np.nan])])
    assert np.isnan(nan)
    assert max_abs_diff([[torch.zeros(2)], torch.ones(1)], [np.zeros(2), np.ones(1) * 3]) == 2
