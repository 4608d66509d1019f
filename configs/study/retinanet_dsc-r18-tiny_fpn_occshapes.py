# Occlusion study: DSC-ResNet-18, Dynamic Stride Convolution in the downsampling 3x3 convs of
# stages 2-4: 0.70M backbone parameters.
_base_ = './_base_/retinanet_fpn_occshapes.py'
model = dict(backbone=dict(type='DSCResNet'))
