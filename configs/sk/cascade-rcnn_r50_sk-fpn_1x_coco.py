_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# ResNet-50 with the SK-FPN neck: SK[2, 32, 16] output convs (docs/sk.md).
model = dict(neck=dict(type='SKFPN'))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
