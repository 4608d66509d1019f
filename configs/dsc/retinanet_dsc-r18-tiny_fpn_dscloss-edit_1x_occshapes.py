_base_ = './retinanet_dsc-r18-tiny_fpn_1x_occshapes.py'
# Editing on the demo detector: no ground truth attraction; computation is drawn to the left half
# of every image and pushed out of the right half. tools/analysis/dsc_maps.py shows the result.
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(
        type='DSCAllocationLoss',
        loss_weight=1.0,
        target=None,
        edit=dict(boxes=[[0.0, 0.0, 0.5, 1.0, 1.0], [0.5, 0.0, 1.0, 1.0, -1.0]])))
