_base_ = './retinanet_dsc-r18-tiny_fpn_1x_occshapes.py'
# The tiny DSC detector plus the allocation loss (sampling pulled onto the ground-truth boxes).
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1, target='boxes'))
