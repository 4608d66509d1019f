_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# TiedResNet50: TiedBottlenecks of 4 splits x 32 base width, B = 1, 2, 4, 8 per stage (docs/tbc.md).
# No ImageNet checkpoint of this backbone exists, so it trains from scratch: every stage trainable,
# BN in train mode. With a checkpoint, use frozen_stages=1, norm_eval=True,
# init_cfg=dict(type='Pretrained', checkpoint=...) (docs/tbc.md).
model = dict(
    backbone=dict(type='TiedResNet', depth=50, arch='base', frozen_stages=-1, norm_eval=False,
                  init_cfg=None))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='OcclusionEvalHook'), dict(type='SyncBuffersHook')]
