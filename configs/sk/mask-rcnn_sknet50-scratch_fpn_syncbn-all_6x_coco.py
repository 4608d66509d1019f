_base_ = [
    'mmdet::scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py', '../_base_/occlusion_eval.py'
]
# SKNet-50 without ImageNet weights, on mmdet's from-scratch recipe ("Rethinking ImageNet
# Pre-training", He et al., ICCV 2019): every stage trained, no weight decay on the norms, 6x
# schedule (73 epochs, lr steps at 65 and 71), with SyncBN instead of its GN in the backbone, FPN
# and heads: the norm of an SK attention sees one value per channel and image (a 1x1 map), which GN
# (32 groups of d = 32 or 64 channels) would reduce to one or two values per group; SyncBN
# normalises each channel over the whole batch.
# _delete_: in place of the base's GN (its num_groups would stay in a merged dict)
norm_cfg = dict(_delete_=True, type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(type='SKNet', depth=50, norm_cfg=norm_cfg, norm_eval=False),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(norm_cfg=norm_cfg), mask_head=dict(norm_cfg=norm_cfg)))
