# Plain ShuffleNetV2 1.0x: the DRConv-ShuffleNetV2 recipe and code path with DRConv off, the
# baseline of configs/drconv/retinanet_shufflenetv2-1x_fpn_1x_coco.py. Paper: 69.4% top-1
# (30.6% error) at 146 M FLOPs (ShuffleNetV2, Table 8).
_base_ = './dr-shufflenetv2-1x_16xb64_in1k.py'
model = dict(backbone=dict(drconv=None))
