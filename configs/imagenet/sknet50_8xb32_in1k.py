# SKNet-50 (SKNet paper, Table 2: 20.79% top-1 error, 27.5 M parameters, 4.47 GFLOPs), ResNet-50's
# ImageNet recipe. Published weights: timm's skresnext50_32x4d, converted exactly by
# tools/model_converters/timm_sknet.py (or init_cfg checkpoint='timm://skresnext50_32x4d').
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains here (mmdet's ResNet defaults to norm_eval=True, frozen BN, for detection); without
# SyncBN its buffers are averaged over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='SKNet', depth=50, out_indices=(3, ),
                           style='pytorch', norm_eval=False))
