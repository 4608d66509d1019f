_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# ResNet-50 with the TiedGCB neck: mmdet's FPN, then a TiedGCB (B=8, ratio 1/16) on each of its five
# levels (docs/tbc.md).
model = dict(
    neck=dict(
        _delete_=True,
        type='TiedGCBNeck',
        neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
        ratio=1. / 16,
        B=8))
