# TiedSENet50 (TBC paper, Table 1): TiedResNet50 with a TiedSE (B=8, reduction 16) after the last
# conv of every block, as configs/tbc/mask-rcnn_tiedsenet50_fpn_1x_coco.py. Same recipe as
# TiedResNet50. Paper: the TiedResNet50 trend against SE-ResNet-50 (fewer parameters, similar
# FLOPs, higher top-1); it prints no number we can quote.
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(
    plugins=[dict(cfg=dict(type='TiedSE', B=8, reduction=16), position='after_conv3')]))
