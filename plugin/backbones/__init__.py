"""Backbones with mmdet ResNet's interface, registered for mmdet and mmseg configs alike."""
from .dr_mobilenet import DRMobileNetV2  # noqa: F401
from .dr_resnet import DRBasicBlock, DRBottleneck, DRResNet  # noqa: F401
from .dr_shufflenet import DRShuffleNetV2, ShuffleV2Block  # noqa: F401
from .dsc_resnet import DSCBasicBlock, DSCBottleneck, DSCResNet, DSCShortcut  # noqa: F401
from .sknet import SKBottleneck, SKNet  # noqa: F401
from .tied_resnest import TiedResNeSt  # noqa: F401
from .tied_resnet import TiedBottleneck, TiedResNet, TiedResNeXt  # noqa: F401
