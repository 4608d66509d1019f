_base_ = ['mmdet::gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# The TiedGCB the paper counts ("~10M" parameters in the GCB blocks of a ResNet-50, TiedGCB 16x
# fewer): GCNet's ratio 1/4 after the last conv of every block in stages c3-c5 (mmdet's gcnet
# config), its two 1x1 transforms tied by B=4 (docs/tbc.md).
model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='TiedGCB', ratio=1. / 4, B=4), stages=(False, True, True, True),
             position='after_conv3')
    ]))
