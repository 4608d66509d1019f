_base_ = './retinanet_dr-shufflenetv2-1x_fpn_1x_coco.py'
# The plain ShuffleNetV2 1.0x baseline of the DRConv one (same code path, drconv=None).
model = dict(backbone=dict(drconv=None))
