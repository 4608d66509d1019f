# Occlusion study, pretrained: ../retinanet_r18-tiny_fpn_occshapes.py started from
# its backbone pretrained on shape-classes, the checkpoint that
# `tools/train.py configs/shapecls/r18-tiny_shapecls.py` writes.
# Only the initialisation differs (same data, schedule and budget; BN still trains), so
# tools/study/pretrain_study.py compares it with the from-scratch run.
_base_ = '../retinanet_r18-tiny_fpn_occshapes.py'
model = dict(
    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/r18-tiny_shapecls/epoch_20.pth')))
