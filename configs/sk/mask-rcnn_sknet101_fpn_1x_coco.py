_base_ = './mask-rcnn_sknet50_fpn_1x_coco.py'
model = dict(backbone=dict(depth=101))
