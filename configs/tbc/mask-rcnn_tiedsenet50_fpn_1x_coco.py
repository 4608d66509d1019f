_base_ = './mask-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedSENet50 (TBC paper, Table 1): TiedResNet50 with a TiedSE (B=8, reduction 16) after the last
# conv of every block, where SE-ResNet-50 puts its SE blocks (docs/tbc.md), from its ImageNet
# checkpoint (configs/imagenet/tiedsenet50_8xb32_in1k.py).
model = dict(
    backbone=dict(
        plugins=[dict(cfg=dict(type='TiedSE', B=8, reduction=16), position='after_conv3')],
        init_cfg=dict(checkpoint='work_dirs/tiedsenet50_8xb32_in1k/epoch_100.pth')))
