# The demo detector: a small RetinaNet with the tiny TiedResNet (one TiedBottleneck per stage,
# 2 splits x 8 base width, B = 1, 2, 4, 8), trained from scratch on the occlusion-shapes data (CPU).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/occlusion_shapes_detection.py',
    '../_base_/schedules/schedule_demo_cpu.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/occlusion_eval.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='TiedResNet',
        depth=14,
        arch='tiny',
        base_channels=16,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=1))
randomness = dict(seed=0)
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
