# The demo detector started from its backbone pretrained on shape-classes, the CPU stand-in of
# ImageNet -> COCO: `tools/train.py configs/shapecls/tiedresnet-tiny_shapecls.py` writes the
# classifier whose backbone.* weights load here. Only the initialisation differs from the demo
# config (same schedule, BN still trains), so the two compare pretraining at equal budget.
_base_ = './retinanet_tiedresnet-tiny_fpn_1x_occshapes.py'
model = dict(
    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                                checkpoint='work_dirs/tiedresnet-tiny_shapecls/epoch_20.pth')))
