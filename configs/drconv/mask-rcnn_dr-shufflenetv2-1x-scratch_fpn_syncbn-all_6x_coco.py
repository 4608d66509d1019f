_base_ = [
    'mmdet::scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py', '../_base_/occlusion_eval.py'
]
# DRConv-ShuffleNetV2 1.0x without ImageNet weights, on mmdet's from-scratch recipe ("Rethinking
# ImageNet Pre-training", He et al., ICCV 2019): every stage trained, no weight decay on the norms,
# 6x schedule (73 epochs, lr steps at 65 and 71), with SyncBN instead of its GN in the backbone, FPN
# and heads (ShuffleNetV2's 24/116/232/464 channels have no 32 groups).
# _delete_: in place of the base's GN (its num_groups would stay in a merged dict)
norm_cfg = dict(_delete_=True, type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='DRShuffleNetV2',
        widen_factor=1.0,
        drconv=dict(region_num=8),
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[24, 116, 232, 464], norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(norm_cfg=norm_cfg), mask_head=dict(norm_cfg=norm_cfg)))
