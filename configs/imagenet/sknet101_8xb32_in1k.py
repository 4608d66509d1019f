# SKNet-101 (SKNet paper, Table 2: 20.19% top-1 error, 48.9 M parameters, 8.46 GFLOPs).
_base_ = './sknet50_8xb32_in1k.py'
model = dict(backbone=dict(depth=101))
