"""plugin.analysis: 1 multiply-add = 1 FLOP, checked on ResNet-50 and against conv arithmetic."""
import os.path as osp
import sys

import pytest
import torch
from mmdet.models.backbones import ResNet
from torch import nn

from conftest import DEMO_CFG, ROOT, run_tool
from plugin.analysis import (FLOP_HANDLES, build_model, config_complexity, find_backbone,
                             module_complexity, register_flop_handle)


def conv_macs(module, x, bn_flops_per_element=0):
    """Multiply-adds of every Conv2d in a forward pass, from the layers' shapes: each output
    value takes one filter, ``weight[0]`` (for a TBC the thin shared filter, ``c_i / B`` inputs);
    plus ``bn_flops_per_element`` per element entering a BatchNorm."""
    total = []

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            total.append(out.numel() * mod.weight[0].numel())
        else:
            total.append(inp[0].numel() * bn_flops_per_element)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    with torch.no_grad():
        module.eval()
        module(x)
    for h in handles:
        h.remove()
    return sum(total)


def test_resnet50_matches_the_paper_convention():
    model = ResNet(50)
    x = torch.zeros(1, 3, 224, 224)
    c = module_complexity(model, x)
    assert c['params'] == 23_508_032  # torchvision's ResNet-50 without its fc
    assert c['flops'] == pytest.approx(4.1e9, rel=0.01)  # He et al.: 4.1 GFLOPs (multiply-adds)
    bn_elements = c['flops'] - conv_macs(model, x)
    assert 0 < bn_elements < 0.01 * c['flops']  # the rest is BatchNorm
    assert c['flops'] == conv_macs(model, x, bn_flops_per_element=2)  # eval BN: scale and shift


def test_registered_handle_counts_an_op():
    class Cumsum(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    x = torch.zeros(2, 5)
    assert module_complexity(Cumsum(), x)['uncounted'] == ['aten::cumsum']
    register_flop_handle('aten::cumsum', lambda inputs, outputs: 7)
    try:
        c = module_complexity(Cumsum(), x)
        assert c['flops'] == 7 and c['uncounted'] == []
    finally:
        from plugin.analysis import complexity
        complexity._EXTRA_FLOP_HANDLES.pop('aten::cumsum')


def test_importing_the_plugin_leaves_the_counter_alone():
    """Layers register nothing in the counter: importing the plugin (what every config does)
    imports no module of plugin.analysis."""
    code = ('import sys, plugin; loaded = sorted(m for m in sys.modules '
            "if m.startswith('plugin.analysis')); assert not loaded, loaded")
    run_tool([sys.executable, '-c', code])


def test_plugin_ops_are_counted_by_the_table_beside_the_counter():
    class FusedMultiplyAdd(nn.Module):  # DRConv's filter generator is written as addcmul
        def forward(self, x):
            return torch.addcmul(x, x, x)

    x = torch.zeros(2, 3, 5)
    assert {'aten::addcmul', 'aten::embedding_bag', 'prim::PythonOp._RegionMatmul',
            'prim::PythonOp._RegionFactorConv', 'prim::PythonOp._RegionSelect'} <= set(FLOP_HANDLES)
    c = module_complexity(FusedMultiplyAdd(), x)
    assert c['flops'] == x.numel() and c['uncounted'] == []  # one multiply-add per output


def test_build_model_imports_what_the_config_names(tmp_path):
    """``custom_imports`` of a Config made without Config.fromfile are imported too."""
    from mmengine.config import Config
    module = tmp_path / 'flop_probe_module.py'
    module.write_text('from mmengine.registry import MODELS\nfrom torch import nn\n\n'
                      "MODELS.register_module('FlopProbeNet', module=nn.Identity, force=True)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = Config(dict(custom_imports=dict(imports=['flop_probe_module']),
                          model=dict(type='FlopProbeNet')))
        assert isinstance(build_model(cfg), nn.Identity)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop('flop_probe_module', None)


def test_config_complexity_of_the_demo_detector():
    c = config_complexity(DEMO_CFG, shape=(128, 128))
    model = build_model(DEMO_CFG)
    backbone = find_backbone(model)
    assert c['backbone_params'] == sum(p.numel() for p in backbone.parameters())
    assert c['model_params'] == sum(p.numel() for p in model.parameters())
    assert c['backbone_flops'] == conv_macs(backbone, torch.zeros(1, 3, 128, 128),
                                            bn_flops_per_element=2)
    assert c['model_flops'] > c['backbone_flops']
    small = config_complexity(DEMO_CFG, shape=(128, 128), backbone_shape=(64, 64), model=model)
    assert small['backbone_flops'] == conv_macs(backbone, torch.zeros(1, 3, 64, 64),
                                                bn_flops_per_element=2)
    assert small['model_flops'] == c['model_flops'] and not model.training


def test_whole_model_count_leaves_an_eval_model_in_eval_mode():
    from plugin.analysis.complexity import _TensorForward

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(3)

        def forward(self, inputs, data_samples, mode):
            return self.bn(inputs)

    model = Detector().eval()
    module_complexity(_TensorForward(model, None), torch.zeros(1, 3, 4, 4))
    assert not model.training and not model.bn.training


def test_cli_markdown_row():
    proc = run_tool([osp.join(ROOT, 'tools', 'analysis', 'complexity.py'), DEMO_CFG,
                     '--shape', '64', '64', '--markdown'])
    row = proc.stdout.strip().splitlines()[-1]
    assert row.startswith('| retinanet_tiedresnet-tiny_fpn_1x_occshapes | 0.30 |')
    assert '64x64' in row
