_base_ = './cascade-rcnn_tiedresnet50-s_fpn_1x_coco.py'
# The TBC paper's detection schedule: 2x (24 epochs, lr steps at 16 and 22).
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
