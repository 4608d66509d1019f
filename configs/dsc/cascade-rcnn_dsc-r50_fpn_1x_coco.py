_base_ = ['mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# Cascade R-CNN with DSC-ResNet-50 (DSC downsampling in stages 2-4).
model = dict(backbone=dict(type='DSCResNet'))
