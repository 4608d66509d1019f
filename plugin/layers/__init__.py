"""Convolution and attention layers, one per file; conv layers are built by mmcv's
``build_conv_layer(dict(type=...))`` and attention blocks by mmdet ResNet's ``plugins=``."""
