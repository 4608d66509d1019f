_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# TiedResNet50 (4 splits x 32 base width, B = 1, 2, 4, 8) in place of ResNet-50-V1c, from its
# ImageNet checkpoint (configs/imagenet/tiedresnet50_8xb32_in1k.py; docs/pretraining.md), SyncBN
# training as mmseg's.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, type='TiedResNet', depth=50, arch='base', out_indices=(0, 1, 2, 3),
                  norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/tiedresnet50_8xb32_in1k/epoch_100.pth')))
