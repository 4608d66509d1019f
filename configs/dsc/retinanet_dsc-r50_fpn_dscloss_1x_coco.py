_base_ = './retinanet_dsc-r50_fpn_1x_coco.py'
# DSC-ResNet-50 RetinaNet trained with the allocation loss: sampling pulled onto the GT boxes.
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1, target='boxes'))
