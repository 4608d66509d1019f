# TiedResNet101: +1.4 top-1 over ResNet-101 with ~10% fewer parameters (TBC paper, Table 1).
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(depth=101))
