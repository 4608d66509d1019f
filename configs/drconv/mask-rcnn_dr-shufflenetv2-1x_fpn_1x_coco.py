_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DRConv-ShuffleNetV2 1.0x (m = 8 in the main branch's 1x1 convs), strides 4-32, from scratch (no
# ImageNet checkpoint in these keys): every stage trainable, BN in train mode (docs/drconv.md).
model = dict(
    backbone=dict(_delete_=True, type='DRShuffleNetV2', widen_factor=1.0,
                  drconv=dict(region_num=8), out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[24, 116, 232, 464]))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
