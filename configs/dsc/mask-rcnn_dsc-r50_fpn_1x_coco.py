_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# Mask R-CNN with DSC-ResNet-50 (DSC downsampling in stages 2-4).
model = dict(backbone=dict(type='DSCResNet'))
