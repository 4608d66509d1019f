_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# TiedResNeSt-50: mmdet's ResNeSt-50 (2 radix splits, deep stem, avg-down) whose entry 1x1 and
# split-attention 3x3 convs are TBC/TGC with B=2 (docs/tbc.md), from its ImageNet checkpoint
# (configs/imagenet/tiedresnest50_8xb32_in1k.py): stem and stage 1 frozen, BN frozen.
model = dict(
    backbone=dict(
        _delete_=True,
        type='TiedResNeSt',
        tied_B=2,
        stem_channels=64,
        depth=50,
        radix=2,
        reduction_factor=4,
        avg_down_stride=True,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='work_dirs/tiedresnest50_8xb32_in1k/epoch_100.pth')))
