_base_ = './retinanet_dr-mobilenetv2_fpn_1x_coco.py'
# The plain MobileNetV2 baseline of the DRConv one (mmdet's MobileNetV2 layers, drconv=None).
model = dict(backbone=dict(drconv=None))
