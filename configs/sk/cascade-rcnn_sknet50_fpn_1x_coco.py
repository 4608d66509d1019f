_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# SKNet-50 (paper Table 1). No ImageNet SKNet checkpoint is published in this backbone's keys, so
# the backbone trains from scratch: every stage trainable, BN in train mode. With a checkpoint, use
# frozen_stages=1, norm_eval=True, init_cfg=dict(type='Pretrained', checkpoint=...) (docs/sk.md).
model = dict(
    backbone=dict(type='SKNet', depth=50, frozen_stages=-1, norm_eval=False, init_cfg=None))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
