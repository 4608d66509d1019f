# DRConv-MobileNetV2 (m = 8 in the expansion and projection 1x1 convs) with mmpretrain's
# MobileNetV2 recipe.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='DRMobileNetV2', drconv=dict(region_num=8),
                           out_indices=(7, )))
