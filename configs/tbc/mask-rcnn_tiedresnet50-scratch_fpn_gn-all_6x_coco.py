_base_ = [
    'mmdet::scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py', '../_base_/occlusion_eval.py'
]
# TiedResNet50 without ImageNet weights, on mmdet's from-scratch recipe ("Rethinking ImageNet
# Pre-training", He et al., ICCV 2019): GN in the backbone, FPN and heads, every stage trained,
# no weight decay on the norms, 6x schedule (73 epochs, lr steps at 65 and 71).
model = dict(backbone=dict(type='TiedResNet', depth=50, arch='base', norm_eval=False))
