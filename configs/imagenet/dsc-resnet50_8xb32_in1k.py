# DSC-ResNet-50: the stride-2 convs of stages 2-4 (and their shortcuts) sample learned centres;
# ResNet-50's ImageNet recipe. Its conv_offset layers start at zero (plain strides).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains here (mmdet's ResNet defaults to norm_eval=True, frozen BN, for detection); without
# SyncBN its buffers are averaged over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='DSCResNet', depth=50, out_indices=(3, ),
                           style='pytorch', norm_eval=False))
