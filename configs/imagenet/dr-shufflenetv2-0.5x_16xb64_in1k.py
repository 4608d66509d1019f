# DRConv-ShuffleNetV2 0.5x: the DRConv paper's 67.1% top-1 at 46 M multiply-adds (Table 1).
_base_ = './dr-shufflenetv2-1x_16xb64_in1k.py'
model = dict(backbone=dict(widen_factor=0.5))
