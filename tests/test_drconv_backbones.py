"""DR-ResNet, DRConv-ShuffleNetV2 and DRConv-MobileNetV2 backbones (mmdet ResNet interface)."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.registry import DefaultScope
from torch import nn

from conftest import autocast_dtype
from plugin.analysis import module_complexity
from plugin.backbones import DRMobileNetV2, DRResNet, DRShuffleNetV2, ShuffleV2Block
from plugin.layers import DRConv2d


def drconv_names(model):
    return {name for name, m in model.named_modules() if isinstance(m, DRConv2d)}


def assert_all_grads(model, x):
    model.train()
    sum(o.float().mean() for o in model(x)).backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_dr_resnet50_puts_drconv_in_the_chosen_stages():
    model = DRResNet(50, drconv=dict(region_num=4), stage_with_drconv=(False, True, False, True),
                     out_indices=(0, 1, 2, 3))
    assert drconv_names(model) == {f'layer{s}.{i}.conv2' for s, n in ((2, 4), (4, 3))
                                   for i in range(n)}
    assert model.layer2[0].conv2.region_num == 4 and model.layer2[0].conv2.stride == (2, 2)
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 4, 4),
                                              (1, 2048, 2, 2)]


def test_dr_resnet_loads_resnet_weights_except_the_drconvs():
    plain, dr = ResNet(50), DRResNet(50)
    result = dr.load_state_dict(plain.state_dict(), strict=False)
    dr_convs = drconv_names(dr)
    assert {k.rsplit('.', 1)[0] for k in result.unexpected_keys} == dr_convs  # conv2.weight
    assert {k.split('.conv2.')[0] + '.conv2' for k in result.missing_keys} == dr_convs
    assert 'layer3.5.conv2.generator.weight' in dr.state_dict()


def test_dr_resnet18_interface():
    model = DRResNet(18, base_channels=16, frozen_stages=1, norm_eval=True)
    model.init_weights()
    model.train()
    assert len(drconv_names(model)) == 12  # both 3x3 convs of 2 blocks in stages 2-4
    assert not model.layer1[0].conv1.weight.requires_grad and not model.conv1.weight.requires_grad
    assert model.layer2[0].conv1.guide.weight.requires_grad
    assert not model.layer3[0].bn1.training  # norm_eval
    assert model.layer2[0].norm2.weight.abs().sum() == 0  # zero_init_residual (last norm)
    x = torch.randn(2, 3, 32, 32)
    assert [o.shape[1] for o in model(x)] == [16, 32, 64, 128]
    assert_all_grads(DRResNet(18, base_channels=16), x)


@pytest.mark.parametrize('build', [
    lambda: DRResNet(18, base_channels=16),
    lambda: DRShuffleNetV2(widen_factor=0.5, out_indices=(0, 1, 2)),
    lambda: DRMobileNetV2(widen_factor=0.5, out_indices=(1, 2, 4)),
], ids=['DRResNet', 'DRShuffleNetV2', 'DRMobileNetV2'])
def test_training_step_in_float32_and_autocast(build, device):
    """Every parameter gets a gradient, also under autocast in AMP's dtype of the device (bf16 on
    CPU, fp16 on CUDA)."""
    torch.manual_seed(0)
    model = build().to(device)
    x = torch.randn(2, 3, 64, 64, device=device)
    assert_all_grads(model, x)
    model.zero_grad()
    with torch.autocast(device.type, dtype=autocast_dtype(device)):
        outs = model(x)
    sum(o.float().mean() for o in outs).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_dr_resnet_plain_and_bad_arguments():
    assert drconv_names(DRResNet(18, base_channels=8, drconv=None)) == set()
    with pytest.raises(ValueError, match='stage_with_drconv'):
        DRResNet(50, stage_with_drconv=(True, True))
    with pytest.raises(ValueError, match='dcn'):
        DRResNet(50, dcn=dict(type='DCN'))
    with pytest.raises(ValueError, match='depth'):
        DRResNet(42)


@pytest.mark.parametrize('widen, channels', [(0.5, [24, 48, 96, 192, 1024]),
                                             (1.0, [24, 116, 232, 464, 1024])])
def test_shufflenetv2_outputs_and_drconv_placement(widen, channels):
    model = DRShuffleNetV2(widen, out_indices=(0, 1, 2, 3, 4))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == channels
    assert [o.shape[2] for o in outs] == [16, 8, 4, 2, 2]
    names = drconv_names(model)
    assert len(names) == 2 * 16 and 'layer1.0.branch2.0.conv' in names \
        and 'layer3.3.branch2.2.conv' in names
    assert not isinstance(model.layer1[0].branch1[1].conv, DRConv2d)  # shortcut branch
    assert not isinstance(model.layer1[0].branch2[1].conv, DRConv2d)  # depthwise


def test_shufflenetv2_interface():
    model = DRShuffleNetV2(0.5, out_indices=(1, 2), frozen_stages=1, norm_eval=True)
    assert not hasattr(model, 'layer3') and not hasattr(model, 'conv5')  # unused: not built
    model.train()
    assert not model.stem[0].conv.weight.requires_grad
    assert not model.layer1[0].branch2[0].conv.guide.weight.requires_grad
    assert model.layer2[0].branch2[0].conv.guide.weight.requires_grad
    assert not model.layer2[0].branch2[0].bn.training
    assert drconv_names(DRShuffleNetV2(0.5, drconv=None)) == set()
    assert_all_grads(DRShuffleNetV2(0.5, out_indices=(0, 1, 2, 3)), torch.randn(2, 3, 64, 64))
    for kwargs, message in [(dict(widen_factor=0.75), 'widen_factor'),
                            (dict(out_indices=(5, )), 'out_indices'),
                            (dict(frozen_stages=5), 'frozen_stages')]:
        with pytest.raises(ValueError, match=message):
            DRShuffleNetV2(**kwargs)


def test_shufflenetv2_refuses_conv_cfg_with_drconv():
    """Both would build the main branch's 1x1 convs: DRConv used to win silently."""
    conv_cfg = dict(type='Conv2dAdaptivePadding')
    for build in (lambda: DRShuffleNetV2(0.5, conv_cfg=conv_cfg),
                  lambda: ShuffleV2Block(24, 48, 2, drconv=dict(region_num=2), conv_cfg=conv_cfg)):
        with pytest.raises(ValueError, match=r'drconv and conv_cfg=.*main branch'):
            build()
    plain = DRShuffleNetV2(0.5, drconv=None, conv_cfg=conv_cfg)  # conv_cfg alone: every conv
    assert {type(m.conv).__name__ for m in plain.modules() if hasattr(m, 'conv')} == \
        {'Conv2dAdaptivePadding'}


def test_mobilenetv2_drconv_placement_and_outputs():
    model = DRMobileNetV2(stage_with_drconv=(False, True, True, False, False, False, True),
                          out_indices=(1, 2, 4, 6))
    names = drconv_names(model)
    assert 'layer2.0.expand_conv.conv' in names and 'layer2.1.linear_conv.conv' in names
    assert 'layer7.0.linear_conv.conv' in names and not any(n.startswith('layer1.') for n in names)
    assert not any('depthwise' in n for n in names)
    assert not hasattr(model, 'conv2')  # after the last output: not built
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(24, 16, 16), (32, 8, 8), (96, 4, 4),
                                                  (320, 2, 2)]
    assert_all_grads(DRMobileNetV2(out_indices=(1, 2)), torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match='stage_with_drconv'):
        DRMobileNetV2(stage_with_drconv=(True, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        DRMobileNetV2(out_indices=(1, 2), frozen_stages=4)
    frozen = DRMobileNetV2(out_indices=(1, 2), frozen_stages=3)
    frozen.train()
    assert not frozen.layer3[0].linear_conv.conv.guide.weight.requires_grad


def test_shufflenetv2_multiply_adds_match_the_papers():
    """ShuffleNetV2-0.5x: 41M multiply-adds (ShuffleNetV2 Table 5, with the 1000-class fc);
    DRConv-ShuffleNetV2-0.5x: 46M (DRConv paper). Ours count the backbone up to conv5 at 224."""
    x = torch.randn(1, 3, 224, 224)
    plain = module_complexity(DRShuffleNetV2(0.5, drconv=None, out_indices=(4, )), x)
    dr = module_complexity(DRShuffleNetV2(0.5, out_indices=(4, )), x)
    fc = 1024 * 1000
    assert plain['flops'] + fc == pytest.approx(41e6, rel=0.05)
    assert dr['flops'] + fc == pytest.approx(46e6, rel=0.06)
    assert plain['params'] == pytest.approx(0.34e6, rel=0.02)  # 1.4M with the fc


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_backbones_build_from_configs_in_both_scopes(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        for cfg, cls in [(dict(type='DRResNet', depth=18, base_channels=8), DRResNet),
                         (dict(type='DRShuffleNetV2', widen_factor=0.5), DRShuffleNetV2),
                         (dict(type='DRMobileNetV2', widen_factor=0.5, out_indices=(1, 2)),
                          DRMobileNetV2)]:
            model = MODELS.build(cfg)
            assert type(model) is cls
            assert isinstance(model, nn.Module) and drconv_names(model)


def test_mobilenetv2_refuses_conv_cfg_with_drconv():
    from plugin.backbones import DRMobileNetV2
    with pytest.raises(ValueError, match=r'drconv and conv_cfg=.*stage_with_drconv'):
        DRMobileNetV2(conv_cfg=dict(type='Conv2dAdaptivePadding'))
    # without DRConv stages conv_cfg is mmdet's MobileNetV2's, for every conv
    net = DRMobileNetV2(stage_with_drconv=(False, ) * 7, out_indices=(1, ),
                        conv_cfg=dict(type='Conv2dAdaptivePadding'))
    assert type(net.conv1.conv).__name__ == 'Conv2dAdaptivePadding'
