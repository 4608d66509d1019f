_base_ = './mask-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedResNeXt50: 4 splits x 64 base width, each split a TGC with 4 groups.
model = dict(backbone=dict(type='TiedResNeXt'))
