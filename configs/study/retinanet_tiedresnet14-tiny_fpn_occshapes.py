# Occlusion study: TiedResNet, one TiedBottleneck per stage (2 splits x 8 base width,
# B = 1, 2, 4, 8) at 28 base channels: 0.74M backbone parameters (ResNet-18 baseline: 0.70M).
_base_ = './_base_/retinanet_fpn_occshapes.py'
model = dict(
    backbone=dict(_delete_=True, type='TiedResNet', depth=14, arch='tiny', base_channels=28,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[112, 224, 448, 896]))
