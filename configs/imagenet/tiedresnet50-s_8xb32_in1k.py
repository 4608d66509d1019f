# TiedResNet50-S: 54% of ResNet-50's parameters, 60% of its FLOPs, and still above its top-1
# (TBC paper, Table 1). Same recipe as TiedResNet50.
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(arch='S'))
