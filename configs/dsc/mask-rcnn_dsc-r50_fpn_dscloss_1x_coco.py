_base_ = './mask-rcnn_dsc-r50_fpn_1x_coco.py'
# Mask R-CNN with DSC-ResNet-50 and the allocation loss on the instance masks.
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1, target='masks'))
