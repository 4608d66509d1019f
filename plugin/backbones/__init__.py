"""Backbones with mmdet ResNet's interface, registered for mmdet and mmseg configs alike."""
