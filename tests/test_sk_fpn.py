"""SKFPN reuses mmdet's FPN.forward; with sk_fusion only the top-down levels differ from it."""
import pytest
import torch
from mmdet.models.necks import FPN

from plugin.necks import SKFPN

IN = [8, 16, 32, 64]


def features(seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, 32 >> i, 32 >> i, generator=g) for i, c in enumerate(IN)]


def test_without_fusion_the_forward_is_mmdets(monkeypatch):
    neck = SKFPN(IN, 32, num_outs=5, add_extra_convs='on_input', sk_cfg=dict(groups=8)).eval()
    calls = []
    forward = FPN.forward
    monkeypatch.setattr(FPN, 'forward', lambda self, x: calls.append(1) or forward(self, x))
    with torch.no_grad():
        outs = neck(features())
    assert calls == [1] and len(outs) == 5


@pytest.mark.parametrize('kwargs', [
    dict(num_outs=4),
    dict(num_outs=6),
    dict(num_outs=6, add_extra_convs='on_input'),
    dict(num_outs=5, add_extra_convs='on_lateral', relu_before_extra_convs=True),
    dict(num_outs=6, add_extra_convs='on_output'),
    dict(num_outs=5, start_level=1, add_extra_convs='on_input'),
    dict(num_outs=4, upsample_cfg=dict(scale_factor=2, mode='nearest')),
])
def test_sk_fusion_changes_only_the_levels_below_the_top(kwargs):
    """The top backbone level and the extra levels do not depend on the top-down path: with
    the same weights they equal mmdet's FPN.forward's, the lower levels differ."""
    torch.manual_seed(0)
    fused = SKFPN(IN, 32, sk_fusion=True, sk_cfg=dict(groups=8), **kwargs).eval()
    plain = SKFPN(IN, 32, sk_cfg=dict(groups=8), **kwargs).eval()
    missing, unexpected = plain.load_state_dict(fused.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith('fusions.') for k in unexpected)
    with torch.no_grad():
        a, b = fused(features()), plain(features())
    top = fused.backbone_end_level - fused.start_level - 1
    assert len(a) == len(b) == kwargs['num_outs']
    assert all(x.shape == y.shape for x, y in zip(a, b))
    assert all(torch.equal(x, y) for x, y in zip(a[top:], b[top:]))
    assert not any(torch.allclose(x, y) for x, y in zip(a[:top], b[:top]))
