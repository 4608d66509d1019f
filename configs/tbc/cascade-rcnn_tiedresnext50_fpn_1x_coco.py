_base_ = './cascade-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedResNeXt50: 4 splits x 32 base width, each split a TGC with 8 groups (docs/tbc.md).
model = dict(backbone=dict(
    type='TiedResNeXt',
    init_cfg=dict(checkpoint='work_dirs/tiedresnext50_8xb32_in1k/epoch_100.pth')))
