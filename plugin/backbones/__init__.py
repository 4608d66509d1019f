"""Backbones with mmdet ResNet's interface, registered for mmdet and mmseg configs alike."""
from .sknet import SKBottleneck, SKNet  # noqa: F401
from .tied_resnest import TiedResNeSt  # noqa: F401
from .tied_resnet import TiedBottleneck, TiedResNet, TiedResNeXt  # noqa: F401
