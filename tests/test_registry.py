"""The plugin's registered modules build from mmdet-scope and mmseg-scope configs."""
import pytest
from mmengine.registry import DefaultScope

import plugin  # noqa: F401


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_hook_and_metric_build_in_both_scopes(scope, shapes_data):
    if scope == 'mmdet':
        from mmdet.registry import HOOKS, METRICS
    else:
        from mmseg.registry import HOOKS, METRICS
    with DefaultScope.overwrite_default_scope(scope):
        hook = HOOKS.build(dict(type='OcclusionEvalHook', bins=[0, 0.5, 'inf']))
        metric = METRICS.build(dict(type='OcclusionCocoMetric', ann_file=shapes_data['val'],
                                    metric=['bbox', 'segm'], overlap='mask'))
    assert type(hook).__name__ == 'OcclusionEvalHook'
    assert metric.overlap == 'mask' and metric.metrics == ['bbox', 'segm']


@pytest.mark.parametrize('kwargs, message', [
    (dict(bins=[0.5, 0.2]), 'bins'),
    (dict(overlap='area'), 'overlap'),
])
def test_bad_arguments_fail_when_the_config_is_built(kwargs, message):
    from mmdet.registry import HOOKS, METRICS
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='OcclusionEvalHook', **kwargs))
    with pytest.raises(ValueError, match=message):
        METRICS.build(dict(type='OcclusionCocoMetric', **kwargs))
