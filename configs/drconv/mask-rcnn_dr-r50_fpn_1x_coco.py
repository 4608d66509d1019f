_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# DR-ResNet-50: DRConv (m = 8) in the 3x3 convs of stages 2-4, like mmdet's dcn/stage_with_dcn.
# The ImageNet ResNet-50 weights load for everything else (those convs start from their own init).
model = dict(backbone=dict(type='DRResNet', drconv=dict(region_num=8),
                           stage_with_drconv=(False, True, True, True)))
