"""Arguments of the ResNet-style backbones, checked once: ``depth`` against the backbone's
``arch_settings``, the per-stage arguments against ``num_stages``.

mmdet's ``ResNet`` asserts ``1 <= num_stages <= 4`` and one ``strides``/``dilations`` entry per
stage, with defaults of four entries: ``num_stages=3`` alone fails on a bare ``AssertionError``.
Here defaults follow ``num_stages`` (the first ``num_stages`` entries of the four-stage default)
and an argument of the wrong length is a ``ValueError`` naming it and ``num_stages``.
"""
from typing import Any, Optional, Sequence, Tuple

MAX_STAGES = 4
RESNET_DEFAULTS = dict(strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
                       stage_with_dcn=(False, ) * MAX_STAGES)


def check_depth(name: str, depth: Any, arch_settings: dict) -> None:
    """A ``ValueError`` naming ``name`` unless ``depth`` is a key of ``arch_settings``."""
    if depth not in arch_settings:
        raise ValueError(f'{name}: depth must be one of {sorted(arch_settings)}, got {depth!r}')


def check_num_stages(name: str, num_stages: Any) -> int:
    """``num_stages`` if it is an int in 1..4, else a ``ValueError`` naming it."""
    if isinstance(num_stages, bool) or not isinstance(num_stages, int) \
            or not 1 <= num_stages <= MAX_STAGES:
        raise ValueError(f'{name}: num_stages must be an int in 1..{MAX_STAGES}, '
                         f'got {num_stages!r}')
    return num_stages


def per_stage(name: str, arg: str, value: Optional[Sequence], default: Sequence,
              num_stages: int) -> Tuple:
    """``value`` as a tuple of ``num_stages`` entries; ``None`` takes the first ``num_stages``
    entries of the four-stage ``default``."""
    if value is None:
        return tuple(default[:num_stages])
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
            or len(value) != num_stages:
        raise ValueError(f'{name}: {arg}={value!r} needs one entry per stage '
                         f'(num_stages={num_stages})')
    return tuple(value)


def resnet_stage_args(name: str, kwargs: dict) -> dict:
    """mmdet ``ResNet`` keyword arguments with ``strides``, ``dilations``, ``stage_with_dcn`` and
    ``out_indices`` fitted to ``num_stages`` (defaults) or checked against it (given values);
    ``plugins[i]['stages']`` too. ``name`` (the backbone class) starts every message."""
    num_stages = check_num_stages(name, kwargs.get('num_stages', MAX_STAGES))
    out = dict(kwargs, num_stages=num_stages)
    for arg, default in RESNET_DEFAULTS.items():
        out[arg] = per_stage(name, arg, kwargs.get(arg), default, num_stages)
    out_indices = kwargs.get('out_indices')
    if out_indices is None:
        out['out_indices'] = tuple(range(num_stages))
    elif not out_indices or not all(isinstance(i, int) and 0 <= i < num_stages
                                    for i in out_indices):
        raise ValueError(f'{name}: out_indices={out_indices!r} must index stages 0..'
                         f'{num_stages - 1} (num_stages={num_stages})')
    for i, plugin in enumerate(kwargs.get('plugins') or ()):
        stages = plugin.get('stages')
        if stages is not None:
            per_stage(name, f'plugins[{i}].stages', stages, (), num_stages)
    return out
