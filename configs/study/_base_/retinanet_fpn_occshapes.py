# The occlusion study's RetinaNet (tools/study/occlusion_study.py): the demo RetinaNet with a
# ResNet-18 at 1/4 width (16 base channels, 0.70M parameters), trained from scratch on CPU.
# Each study config swaps the backbone for one of about the same number of parameters.
_base_ = ['../../demo/retinanet_r18-tiny_fpn_1x_occshapes.py']
# The study's budget, as for its Mask R-CNN: 8 epochs, one step down before the last.
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=60),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]
