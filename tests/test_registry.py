"""The plugin's registered modules build from mmdet-scope and mmseg-scope configs, and every name
it registers resolves to its class there (no mmdet, mmseg or mmcv module of the same name)."""
import importlib

import mmengine.registry
import pytest
from mmengine.registry import DefaultScope

import plugin  # noqa: F401

# what the README and the configs use (more may be registered)
DOCUMENTED = {
    'MODELS': {'TBC', 'TGC', 'TFC', 'TiedSE', 'TiedGCB', 'TiedGCBNeck', 'TiedResNet',
               'TiedResNeXt', 'TiedResNeSt', 'DRConv', 'DRResNet', 'DRShuffleNetV2',
               'DRMobileNetV2', 'DSC', 'DSCResNet', 'DSCAllocationLoss', 'DSCDetector',
               'DSCSegmentor', 'SK', 'SKNet', 'SKFPN'},
    'HOOKS': {'OcclusionEvalHook', 'IterSyncBuffersHook'},
    'METRICS': {'OcclusionCocoMetric'},
}


def registered_by_plugin(kind):
    """``{name: class}`` of mmengine's root registry ``kind`` that the plugin registered."""
    registry = getattr(mmengine.registry, kind)
    return {name: cls for name, cls in registry.module_dict.items()
            if getattr(cls, '__module__', '').split('.')[0] == 'plugin'}


@pytest.mark.parametrize('kind', sorted(DOCUMENTED))
def test_documented_names_are_the_plugins(kind):
    assert DOCUMENTED[kind] <= set(registered_by_plugin(kind))


@pytest.mark.parametrize('kind', sorted(DOCUMENTED))
@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_every_name_resolves_to_the_plugins_class_in_each_scope(scope, kind):
    """A scope's registry looks in its own modules first: a name mmdet or mmseg also registers
    would build their class in their configs, not ours."""
    child = getattr(importlib.import_module(f'{scope}.registry'), kind)
    child.import_from_location()  # the scope's own modules, registered as a build would
    ours = registered_by_plugin(kind)
    clashes = sorted(set(ours) & set(child.module_dict))
    assert not clashes, f'{scope} registers {clashes} too'
    with DefaultScope.overwrite_default_scope(scope):
        assert {name: child.get(name) for name in ours} == ours


def test_conv_layer_names_are_not_mmcvs():
    """mmcv registers its conv layers in the same root registry as our conv layers."""
    from mmcv.cnn import build_conv_layer
    for name in ('TBC', 'TGC', 'DRConv', 'DSC', 'SK'):  # 'SK' is a builder function
        layer = build_conv_layer(dict(type=name), 32, 32, 3, padding=1)
        assert type(layer).__module__.startswith('plugin.layers.'), name
    assert type(build_conv_layer(dict(type='Conv'), 32, 32, 3)).__module__.startswith('mmcv.')


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_hook_and_metric_build_the_plugins_classes_in_both_scopes(scope, shapes_data):
    """What a config's ``custom_hooks`` / ``val_evaluator`` build in each scope is the class the
    plugin registered, not a class of the same name that the scope (or mmengine) holds."""
    registry = importlib.import_module(f'{scope}.registry')
    registry.HOOKS.import_from_location()
    registry.METRICS.import_from_location()
    with DefaultScope.overwrite_default_scope(scope):
        hook = registry.HOOKS.build(dict(type='OcclusionEvalHook', bins=[0, 0.5, 'inf']))
        metric = registry.METRICS.build(dict(type='OcclusionCocoMetric',
                                             ann_file=shapes_data['val'],
                                             metric=['bbox', 'segm'], overlap='mask'))
    assert type(hook) is registered_by_plugin('HOOKS')['OcclusionEvalHook']
    assert type(metric) is registered_by_plugin('METRICS')['OcclusionCocoMetric']


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
