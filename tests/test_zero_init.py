"""One zero_init_residual for the backbones with their own blocks (backbones/zero_init.py)."""
import contextlib

import pytest
import torch

from plugin.backbones import DRResNet, DSCResNet, SKNet
from plugin.backbones.zero_init import ZeroInitResidualMixin

BUILDERS = {
    'DRResNet-18': (lambda **kw: DRResNet(18, base_channels=8, **kw), 'norm2'),
    'DRResNet-50': (lambda **kw: DRResNet(50, base_channels=8, **kw), 'norm3'),
    'DSCResNet-18': (lambda **kw: DSCResNet(18, base_channels=8, **kw), 'norm2'),
    'DSCResNet-50': (lambda **kw: DSCResNet(50, base_channels=8, **kw), 'norm3'),
    'SKNet-14': (lambda **kw: SKNet(14, **kw), 'norm3'),
}


def blocks(net):
    return [block for name in net.res_layers for block in getattr(net, name)]


@pytest.mark.parametrize('name', BUILDERS)
def test_last_norm_of_every_block_starts_at_zero(name):
    build, last = BUILDERS[name]
    assert isinstance(build(), ZeroInitResidualMixin)
    torch.manual_seed(0)
    net = build()
    net.init_weights()
    for block in blocks(net):
        assert getattr(block, last).weight.abs().sum() == 0
        assert getattr(block, 'norm1').weight.abs().sum() > 0


@pytest.mark.parametrize('name', BUILDERS)
@pytest.mark.parametrize('kwargs', [dict(zero_init_residual=False),
                                    dict(init_cfg=dict(type='Kaiming', layer='Conv2d')),
                                    dict(pretrained='no_such_checkpoint.pth')],
                         ids=['zero_init_residual=False', 'init_cfg', 'pretrained'])
def test_no_zero_init_when_off_or_weights_come_from_elsewhere(name, kwargs):
    build, _ = BUILDERS[name]
    warns = pytest.warns(UserWarning, match='pretrained') if 'pretrained' in kwargs else \
        contextlib.nullcontext()
    with warns:
        net = build(**kwargs)
    assert all(block.init_cfg is None for block in blocks(net))
