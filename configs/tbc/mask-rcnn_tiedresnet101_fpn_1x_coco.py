_base_ = './mask-rcnn_tiedresnet50_fpn_1x_coco.py'
model = dict(backbone=dict(
    depth=101, init_cfg=dict(checkpoint='work_dirs/tiedresnet101_8xb32_in1k/epoch_100.pth')))
