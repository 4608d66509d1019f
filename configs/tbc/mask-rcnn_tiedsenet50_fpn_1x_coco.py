_base_ = './mask-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedSENet50 (TBC paper, Table 1): TiedResNet50 with a TiedSE (B=8, reduction 16) after the last
# conv of every block, where SE-ResNet-50 puts its SE blocks (docs/tbc.md). Trains from scratch
# as TiedResNet50 does (no ImageNet checkpoint).
model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='TiedSE', B=8, reduction=16), position='after_conv3')
    ]))
