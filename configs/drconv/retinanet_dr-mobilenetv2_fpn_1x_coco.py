_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DRConv-MobileNetV2 (m = 8 in the expansion and projection 1x1 convs), strides 4-32, from scratch
# (no ImageNet checkpoint in these keys): every stage trainable, BN in train mode (docs/drconv.md).
model = dict(
    backbone=dict(_delete_=True, type='DRMobileNetV2', drconv=dict(region_num=8),
                  out_indices=(1, 2, 4, 6)),
    neck=dict(in_channels=[24, 32, 96, 320]))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
