_base_ = '../demo/retinanet_r18-tiny_fpn_1x_occshapes.py'
# The demo detector with DRConv (m = 8) in the 3x3 convs of stages 2-4; CPU, seconds.
model = dict(backbone=dict(type='DRResNet', drconv=dict(region_num=8),
                           stage_with_drconv=(False, True, True, True)))
