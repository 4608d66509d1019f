_base_ = './retinanet_dsc-r50_fpn_1x_coco.py'
# Editing example: besides the GT boxes, computation is pushed out of the top fifth of every image
# (weight -1: sky, ceilings) and drawn to its central region (weight +0.5). Boxes are fractions of
# the image: [x1, y1, x2, y2, weight]; a map (array, .npy or image file) works the same way.
# Check the effect with tools/analysis/dsc_maps.py CONFIG CKPT IMAGE --out DIR --compare CKPT0.
model = dict(
    _delete_=True,
    type='DSCDetector',
    detector={{_base_.model}},
    allocation_loss=dict(
        type='DSCAllocationLoss',
        loss_weight=0.1,
        target='boxes',
        edit=dict(boxes=[[0.0, 0.0, 1.0, 0.2, -1.0], [0.25, 0.25, 0.75, 0.75, 0.5]])))
