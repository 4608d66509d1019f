# TiedResNet50 on ImageNet-1k with the TBC paper's recipe (Sec. 4): SGD momentum 0.9, batch 256 on
# 8 GPUs, lr 0.1 divided by 10 every 30 epochs, 100 epochs, random-resized crop 224: exactly
# mmpretrain's ResNet-50 schedule. Paper (Table 1): +1.5 top-1 over ResNet-50 with ~10% fewer
# parameters. The checkpoint feeds the COCO configs through init_cfg (docs/pretraining.md).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains here (mmdet's ResNet defaults to norm_eval=True, frozen BN, for detection); without
# SyncBN its buffers are averaged over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='TiedResNet', depth=50, arch='base',
                           out_indices=(3, ), style='pytorch', norm_eval=False))
