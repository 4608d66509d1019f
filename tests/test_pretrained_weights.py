"""Published ImageNet weights in our backbones: timm's SKNet-50 converted exactly, torchvision's
ResNet-50 keys in DR-ResNet-50 and DSC-ResNet-50. Offline: the published models are built with
random weights (no download), which is what makes the comparison exact and meaningful."""
import re

import pytest
import torch

timm = pytest.importorskip('timm')
torchvision = pytest.importorskip('torchvision')


def _randomise_bn(model, seed=0):
    """Non-trivial running statistics and affine parameters, so that eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _timm_stages(model, x):
    x = model.maxpool(model.act1(model.bn1(model.conv1(x))))
    outs = []
    for name in ('layer1', 'layer2', 'layer3', 'layer4'):
        x = getattr(model, name)(x)
        outs.append(x)
    return outs


def test_timm_sknet50_converts_exactly():
    from plugin.backbones import SKNet
    from plugin.converters import convert_timm_sknet
    torch.manual_seed(0)
    ref = timm.create_model('skresnext50_32x4d', pretrained=False).eval()
    _randomise_bn(ref)
    ours = SKNet(depth=50, out_indices=(0, 1, 2, 3))
    ours.eval()  # mmdet's ResNet.train returns None
    state = convert_timm_sknet(ref.state_dict())
    result = ours.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # timm's classifier is dropped for a backbone, kept as mmpretrain's head.fc for a classifier
    assert not any(k.startswith('fc.') for k in state)
    with_head = convert_timm_sknet(ref.state_dict(), head_prefix='head.')
    assert set(with_head) - set(state) == {'head.fc.weight', 'head.fc.bias'}
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = _timm_stages(ref, x), ours(x)
    for k, (e, o) in enumerate(zip(expected, got)):
        assert e.shape == o.shape, k
        assert (e - o).abs().max().item() <= 1e-5, (k, (e - o).abs().max().item())


def test_timm_converter_refuses_other_layouts():
    from plugin.converters import convert_timm_sknet
    with pytest.raises(KeyError, match='layer1.0.conv2.weight'):
        convert_timm_sknet({'layer1.0.conv2.weight': torch.zeros(1)})


def test_timm_scheme_names_unknown_models():
    from mmengine.runner.checkpoint import CheckpointLoader
    import plugin  # noqa: F401
    with pytest.raises(ValueError, match="no converter for timm model 'resnet18'"):
        CheckpointLoader.load_checkpoint('timm://resnet18')


def test_converter_tool_writes_a_strict_checkpoint(tmp_path):
    from safetensors.torch import save_file

    from plugin.backbones import SKNet
    from conftest import run_tool
    ref = timm.create_model('skresnext50_32x4d', pretrained=False)
    src = tmp_path / 'timm.safetensors'
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(src))
    out = tmp_path / 'sknet50.pth'
    run_tool(['tools/model_converters/timm_sknet.py', str(src), str(out)])
    ckpt = torch.load(out, weights_only=True)
    SKNet(depth=50).load_state_dict(ckpt['state_dict'], strict=True)


@pytest.mark.parametrize('backbone, new_modules, replaced', [
    (dict(type='DSCResNet', depth=50), r'\.conv_offset\.', None),
    # DRConv generates its 3x3 filters: ResNet's conv2 weights of stages 2-4 have no place
    (dict(type='DRResNet', depth=50), r'\.conv2\.(guide|generator)\.',
     r'^layer[234]\.\d+\.conv2\.weight$'),
])
def test_torchvision_resnet50_keys(backbone, new_modules, replaced):
    """torchvision's ResNet-50 (what ``torchvision://resnet50`` loads) fills every key but the
    new modules', which are listed by name; the only keys left over are the convs they replace."""
    from mmengine.registry import MODELS
    import plugin  # noqa: F401
    state = torchvision.models.resnet50(weights=None).state_dict()
    state = {k: v for k, v in state.items() if not k.startswith('fc.')}
    model = MODELS.build(backbone)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys and all(re.search(new_modules, k) for k in result.missing_keys), \
        [k for k in result.missing_keys if not re.search(new_modules, k)]
    if replaced is None:
        assert not result.unexpected_keys
    else:
        assert result.unexpected_keys and all(re.search(replaced, k)
                                              for k in result.unexpected_keys)
        assert len(result.unexpected_keys) == 4 + 6 + 3  # every block of stages 2-4
