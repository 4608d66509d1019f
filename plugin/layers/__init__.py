"""Convolution and attention layers, one per file; conv layers are built by mmcv's
``build_conv_layer(dict(type=...))`` and attention blocks by mmdet ResNet's ``plugins=``."""
from .dr_conv import DRConv2d, DRFilterGenerator  # noqa: F401
from .dynamic_stride_conv import DynamicStrideConv2d, dsc_conv2d  # noqa: F401
from .sk_attention import SKAttention  # noqa: F401
from .sk_conv import SKConv2d, sk_conv_layer  # noqa: F401
from .tied_block_conv import TiedBlockConv2d  # noqa: F401
from .tied_gcb import TiedGCB  # noqa: F401
from .tied_linear import TiedLinear  # noqa: F401
from .tied_se import TiedSE  # noqa: F401
