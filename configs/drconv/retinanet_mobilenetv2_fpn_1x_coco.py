_base_ = './retinanet_dr-mobilenetv2_fpn_1x_coco.py'
# The plain MobileNetV2 baseline of the DRConv one (mmdet's MobileNetV2 layers, drconv=None), from
# the ImageNet weights mmdet's MobileNetV2 configs use (mmpretrain's recipe, as the DRConv one).
model = dict(backbone=dict(
    drconv=None,
    init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')))
