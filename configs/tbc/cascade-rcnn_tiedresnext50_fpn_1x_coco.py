_base_ = './cascade-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedResNeXt50: 4 splits x 32 base width, each split a TGC with 8 groups (docs/tbc.md).
model = dict(backbone=dict(type='TiedResNeXt'))
