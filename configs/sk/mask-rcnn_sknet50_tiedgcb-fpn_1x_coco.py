_base_ = './mask-rcnn_sknet50_fpn_1x_coco.py'
# SKNet-50 with the TiedGCB neck (docs/tbc.md): mmdet's FPN, then a TiedGCB (B=8, ratio 1/16) on
# each of its five levels.
model = dict(
    neck=dict(
        _delete_=True,
        type='TiedGCBNeck',
        neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
        ratio=1. / 16,
        B=8))
