_base_ = './cascade-rcnn_dsc-r50_fpn_1x_coco.py'
# Cascade R-CNN with DSC-ResNet-50 and the allocation loss on the GT boxes.
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1, target='boxes'))
