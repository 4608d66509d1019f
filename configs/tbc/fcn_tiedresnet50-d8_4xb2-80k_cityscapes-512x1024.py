_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# Dilated TiedResNet50 (output stride 8: strides 1, 2, 1, 1 and dilations 1, 1, 2, 4 in the tied 3x3
# convs) in place of ResNet-50-V1c, from its ImageNet checkpoint
# (configs/imagenet/tiedresnet50_8xb32_in1k.py; docs/pretraining.md), SyncBN training as mmseg's.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, type='TiedResNet', depth=50, arch='base', strides=(1, 2, 1, 1),
                  dilations=(1, 1, 2, 4), out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg,
                  norm_eval=False, style='pytorch',
                  init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/tiedresnet50_8xb32_in1k/epoch_100.pth')))
