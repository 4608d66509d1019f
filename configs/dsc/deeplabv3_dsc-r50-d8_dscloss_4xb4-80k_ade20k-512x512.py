_base_ = './deeplabv3_dsc-r50-d8_4xb4-80k_ade20k-512x512.py'
# DeepLabV3 with DSC-ResNet-50-D8 and the allocation loss on the label boundaries.
model = dict(
    _delete_=True,
    type='DSCSegmentor',
    segmentor={{_base_.model}},
    allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1, target='boundary'))
