_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# SE-ResNet-50 with TiedSE (B=8, reduction 16) after the last conv of every block: 0.04M attention
# parameters instead of SE's 2.5M (docs/tbc.md).
model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='TiedSE', B=8, reduction=16), position='after_conv3')
    ]))
