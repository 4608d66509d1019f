# Occlusion study: SKNet, one SK bottleneck per stage (SK[2, 8, 32] convs, 4 channels per group)
# at 16 base channels: 0.69M backbone parameters (ResNet-18 baseline: 0.70M).
_base_ = './_base_/mask-rcnn_fpn_occshapes.py'
model = dict(
    backbone=dict(_delete_=True, type='SKNet', depth=14, groups=8, base_width=4, base_channels=16,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]))
