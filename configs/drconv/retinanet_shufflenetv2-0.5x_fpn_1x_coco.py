_base_ = './retinanet_dr-shufflenetv2-0.5x_fpn_1x_coco.py'
# The plain ShuffleNetV2 0.5x baseline of the DRConv one (same code path, drconv=None), from the
# checkpoint of configs/imagenet/shufflenetv2-0.5x_16xb64_in1k.py (the same recipe).
model = dict(backbone=dict(
    drconv=None, init_cfg=dict(checkpoint='work_dirs/shufflenetv2-0.5x_16xb64_in1k/epoch_300.pth')))
