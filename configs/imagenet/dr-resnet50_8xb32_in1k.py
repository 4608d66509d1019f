# DR-ResNet-50: DRConv (m = 8) in the 3x3 convs of stages 2-4, ResNet-50's ImageNet recipe
# (DRConv paper, Sec. 4.1 trains its ResNet-50 variant with the standard schedule).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains here (mmdet's ResNet defaults to norm_eval=True, frozen BN, for detection); without
# SyncBN its buffers are averaged over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='DRResNet', depth=50, drconv=dict(region_num=8),
                           stage_with_drconv=(False, True, True, True), out_indices=(3, ),
                           style='pytorch', norm_eval=False))
