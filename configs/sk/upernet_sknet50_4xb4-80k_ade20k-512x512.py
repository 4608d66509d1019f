_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# SKNet-50 (paper Table 1) in place of ResNet-50-V1c, from the paper's ImageNet weights as timm
# publishes them (timm:// checkpoint scheme; docs/pretraining.md), SyncBN training as mmseg's.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, type='SKNet', depth=50, out_indices=(0, 1, 2, 3),
                  norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint='timm://skresnext50_32x4d')))
