_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DRConv-ShuffleNetV2 1.0x (m = 8 in the main branch's 1x1 convs), strides 4-32, from its ImageNet
# checkpoint (configs/imagenet/dr-shufflenetv2-1x_16xb64_in1k.py, 300 epochs; docs/pretraining.md)
# as mmdet's ResNet-50 starts from torchvision's: stem and stage 1 frozen, BN frozen.
model = dict(
    backbone=dict(
        _delete_=True,
        type='DRShuffleNetV2',
        widen_factor=1.0,
        drconv=dict(region_num=8),
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/dr-shufflenetv2-1x_16xb64_in1k/epoch_300.pth')),
    neck=dict(in_channels=[24, 116, 232, 464]))
