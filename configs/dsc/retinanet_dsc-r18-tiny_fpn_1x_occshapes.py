_base_ = '../demo/retinanet_r18-tiny_fpn_1x_occshapes.py'
# The demo detector with a DSC-ResNet-18 (DSC downsampling in stages 2-4); CPU, seconds.
model = dict(backbone=dict(type='DSCResNet'))
