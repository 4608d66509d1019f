# DRConv-ShuffleNetV2 1.0x on ImageNet with mmpretrain's ShuffleNetV2 recipe (batch 1024, lr 0.5,
# 300 epochs, the recipe of ShuffleNetV2's paper that the DRConv paper follows).
_base_ = 'mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
model = dict(backbone=dict(_delete_=True, type='DRShuffleNetV2', widen_factor=1.0,
                           drconv=dict(region_num=8), out_indices=(4, )))
