_base_ = './cascade-mask-rcnn_tiedresnet50_fpn_1x_coco.py'
# TiedResNet50-S: 4 splits x 18 base width (54% of ResNet-50's parameters, 60% of its FLOPs).
model = dict(backbone=dict(
    arch='S', init_cfg=dict(checkpoint='work_dirs/tiedresnet50-s_8xb32_in1k/epoch_100.pth')))
