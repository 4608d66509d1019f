_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DSC-ResNet-50: the stride-2 convs of stages 2-4 (and their shortcuts) sample learned centres.
# The ImageNet ResNet-50 checkpoint loads as is; conv_offset starts at zero (plain strides).
model = dict(backbone=dict(type='DSCResNet'))
