"""Published weights in our backbones' keys, and the ``timm://`` checkpoint scheme.

``init_cfg=dict(type='Pretrained', checkpoint='timm://skresnext50_32x4d')`` in a backbone config
loads timm's ImageNet weights (downloaded by timm on first use) converted to our keys, so a config
names the weights and no manual step is needed.
"""
from mmengine.runner.checkpoint import CheckpointLoader

from .timm_sknet import convert_timm_sknet

# timm model name -> (converter, the backbone it converts to)
TIMM_CONVERTERS = {'skresnext50_32x4d': (convert_timm_sknet, 'SKNet(depth=50)')}


@CheckpointLoader.register_scheme(prefixes='timm://')
def load_from_timm(filename: str, map_location=None) -> dict:
    """``timm://NAME``: timm's pretrained NAME, converted (backbone keys, no classifier)."""
    name = filename[len('timm://'):]
    if name not in TIMM_CONVERTERS:
        raise ValueError(f'{filename}: no converter for timm model {name!r}; known: '
                         f'{sorted(TIMM_CONVERTERS)}')
    import timm
    model = timm.create_model(name, pretrained=True)
    state = {k: v.to(map_location) if map_location else v for k, v in model.state_dict().items()}
    convert, _ = TIMM_CONVERTERS[name]
    return convert(state)


__all__ = ['TIMM_CONVERTERS', 'convert_timm_sknet', 'load_from_timm']
