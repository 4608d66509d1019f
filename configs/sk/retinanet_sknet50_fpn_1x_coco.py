_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# SKNet-50 (paper Table 1) from the paper's ImageNet weights as timm publishes them
# (skresnext50_32x4d, converted to our keys by the timm:// checkpoint scheme; docs/pretraining.md),
# as mmdet's ResNeXt configs start: stem and stage 1 frozen, BN frozen.
model = dict(
    backbone=dict(
        type='SKNet',
        depth=50,
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='timm://skresnext50_32x4d')))
