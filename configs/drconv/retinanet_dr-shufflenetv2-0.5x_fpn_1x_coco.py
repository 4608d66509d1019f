_base_ = './retinanet_dr-shufflenetv2-1x_fpn_1x_coco.py'
# DRConv-ShuffleNetV2 0.5x: the paper's 46M multiply-adds model (41M plain) at 224x224, from the
# checkpoint of configs/imagenet/dr-shufflenetv2-0.5x_16xb64_in1k.py.
model = dict(
    backbone=dict(
        widen_factor=0.5,
        init_cfg=dict(checkpoint='work_dirs/dr-shufflenetv2-0.5x_16xb64_in1k/epoch_300.pth')),
    neck=dict(in_channels=[24, 48, 96, 192]))
