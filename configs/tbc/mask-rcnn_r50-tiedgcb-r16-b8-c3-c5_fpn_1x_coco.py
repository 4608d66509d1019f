_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# ResNet-50 with a TiedGCB (GCNet context block, 1x1 transforms tied by B=8, ratio 1/16) after the
# last conv of every block in stages 2-4, as mmdet's mask-rcnn_r50-gcb-r16-c3-c5 (docs/tbc.md).
model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='TiedGCB', ratio=1. / 16, B=8), stages=(False, True, True, True),
             position='after_conv3')
    ]))
