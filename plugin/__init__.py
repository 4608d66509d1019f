"""mmdynconv: dynamic and efficient convolutions for MMDetection and MMSegmentation.

``import plugin`` (what ``custom_imports=dict(imports=['plugin'])`` does) registers every module
in the OpenMMLab registries and applies the mmengine fixes of :mod:`plugin.utils.mmengine_patches`.
"""
from .utils import mmengine_patches

mmengine_patches.apply()

# registration of every module, and the timm:// checkpoint scheme
from . import (backbones, converters, datasets, engine, evaluation,  # noqa: E402,F401
               layers, models, necks, visualization)
from .version import __version__  # noqa: E402

__all__ = ['__version__']
