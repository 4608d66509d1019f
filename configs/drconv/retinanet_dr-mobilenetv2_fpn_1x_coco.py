_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DRConv-MobileNetV2 (m = 8 in the expansion and projection 1x1 convs), strides 4-32, from its
# ImageNet checkpoint (configs/imagenet/dr-mobilenetv2_8xb32_in1k.py, 300 epochs;
# docs/pretraining.md) as mmdet's ResNet-50 starts from torchvision's: stem and layer1 frozen, BN
# frozen.
model = dict(
    backbone=dict(
        _delete_=True,
        type='DRMobileNetV2',
        drconv=dict(region_num=8),
        out_indices=(1, 2, 4, 6),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/dr-mobilenetv2_8xb32_in1k/epoch_300.pth')),
    neck=dict(in_channels=[24, 32, 96, 320]))
