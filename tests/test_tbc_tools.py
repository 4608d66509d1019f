"""Filter similarity (TBC paper Fig. 9): cosine and guided backprop against explicit references,
and the CLI on the two demo detectors."""
import os.path as osp

import torch
from torch import nn

from conftest import ROOT, run_tool
from plugin.backbones.tied_resnet import TiedSplitConv2d
from plugin.visualization.filter_similarity import (default_layers, guided_backprop_patterns,
                                                    pairwise_cosine, weight_similarities)

TOOL = osp.join(ROOT, 'tools', 'analysis', 'filter_similarity.py')
TIED_DEMO = osp.join(ROOT, 'configs', 'demo', 'retinanet_tiedresnet-tiny_fpn_1x_occshapes.py')
R18_DEMO = osp.join(ROOT, 'configs', 'demo', 'retinanet_r18-tiny_fpn_1x_occshapes.py')


def test_pairwise_cosine_matches_loop():
    v = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    ref = [torch.dot(v[i], v[j]) / (v[i].norm() * v[j].norm())
           for i in range(5) for j in range(i + 1, 5)]
    torch.testing.assert_close(pairwise_cosine(v), torch.stack(ref))


def test_weight_similarities_use_the_shared_thin_filters():
    split = TiedSplitConv2d(2, 16, B=4, mixer='concat-conv')  # TGC: 2 * 16 / 4 = 8 thin filters
    sims = weight_similarities(split)  # the 1x1 mixer is left out
    assert sims.numel() == 8 * 7 // 2
    torch.testing.assert_close(sims, pairwise_cosine(split.conv.weight.detach()))


class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes positive gradients at positive inputs only."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x, ) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


def test_guided_backprop_matches_explicit_guided_relu():
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv2d(6, 4, 3, padding=1))
    images = torch.randn(2, 3, 8, 8, generator=gen)
    patterns = guided_backprop_patterns(model, model[2], images, max_filters=None)
    assert patterns.shape == (4, 3 * 8 * 8)
    for c in range(4):
        x = images.clone().requires_grad_()
        out = model[2](GuidedReLU.apply(model[0](x)))
        (grad, ) = torch.autograd.grad(out[:, c].mean(), x)
        torch.testing.assert_close(patterns[c], grad.mean(0).flatten())
    assert model[1].inplace and not model[1]._backward_hooks  # restored
    assert guided_backprop_patterns(model, model[2], images, max_filters=2).shape == (2, 192)


def test_cli_compares_resnet_and_tiedresnet(shapes_data, tmp_path):
    out = str(tmp_path / 'sim.png')
    proc = run_tool([TOOL, '--model', 'ResNet-18 tiny', R18_DEMO, '--model', 'TiedResNet tiny',
                     TIED_DEMO, '--mode', 'weights', 'guided', '--images',
                     osp.join(shapes_data['root'], 'images', 'val'), '--num-images', '2',
                     '--size', '64', '--max-filters', '6', '--out', out])
    for mode in ('weights', 'guided'):
        assert osp.getsize(str(tmp_path / f'sim_{mode}.png')) > 10_000
    rows = [line for line in proc.stdout.splitlines() if line.startswith('| guided |')]
    assert len(rows) == 8 and sum('TiedResNet tiny' in r for r in rows) == 4
    assert '| weights | TiedResNet tiny | layer4.0.conv2 | 120 |' in proc.stdout  # 128 / 8 = 16
    assert '| guided | ResNet-18 tiny | layer1.1.conv2 | 15 |' in proc.stdout  # 6 channels


def test_default_layers_of_mmdet_resnet():
    from mmdet.models.backbones import ResNet
    assert default_layers(ResNet(50, base_channels=8)) == [
        'layer1.2.conv2', 'layer2.3.conv2', 'layer3.5.conv2', 'layer4.2.conv2']
