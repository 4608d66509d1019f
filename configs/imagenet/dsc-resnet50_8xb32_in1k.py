# DSC-ResNet-50: the stride-2 convs of stages 2-4 (and their shortcuts) sample learned centres;
# ResNet-50's ImageNet recipe. Its conv_offset layers start at zero (plain strides).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, type='DSCResNet', depth=50, out_indices=(3, ),
                           style='pytorch'))
