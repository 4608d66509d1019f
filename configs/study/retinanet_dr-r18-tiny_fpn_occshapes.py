# Occlusion study: DR-ResNet-18, DRConv with m = 4 regions in the 3x3 convs of stages 2-4:
# 0.66M backbone parameters (m = 8 would be 1.29M against the baseline's 0.70M).
_base_ = './_base_/retinanet_fpn_occshapes.py'
model = dict(backbone=dict(type='DRResNet', drconv=dict(region_num=4),
                           stage_with_drconv=(False, True, True, True)))
