# Plain ShuffleNetV2 0.5x: the DRConv-ShuffleNetV2 recipe and code path with DRConv off, the
# baseline of configs/drconv/retinanet_shufflenetv2-0.5x_fpn_1x_coco.py. Paper: 60.3% top-1
# (39.7% error) at 41 M FLOPs (ShuffleNetV2, Table 8).
_base_ = './shufflenetv2-1x_16xb64_in1k.py'
model = dict(backbone=dict(widen_factor=0.5))
