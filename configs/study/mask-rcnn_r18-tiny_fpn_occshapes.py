# Occlusion study: the ResNet-18 baseline (1/4 width, 0.70M backbone parameters).
_base_ = './_base_/mask-rcnn_fpn_occshapes.py'
