_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# DR-ResNet-50 (DRConv, m = 8, in the 3x3 convs of stages 2-4) with ResNetV1c's deep stem; the
# ResNet-50-V1c ImageNet weights load for everything but those convs. mmdet's ResNet has no
# contract_dilation (the base sets none: dilations (1, 1, 1, 1)).
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='DRResNet', depth=50, deep_stem=True,
                  drconv=dict(region_num=8), stage_with_drconv=(False, True, True, True),
                  out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg, norm_eval=False, style='pytorch'))
