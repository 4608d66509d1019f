_base_ = './retinanet_sknet50_fpn_1x_coco.py'
# SKNet-101: no published weights; the checkpoint of configs/imagenet/sknet101_8xb32_in1k.py.
model = dict(backbone=dict(
    depth=101,
    init_cfg=dict(prefix='backbone.', checkpoint='work_dirs/sknet101_8xb32_in1k/epoch_100.pth')))
