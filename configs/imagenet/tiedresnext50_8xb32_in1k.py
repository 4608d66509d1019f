# TiedResNeXt50 (TBC paper, Table 1: "the same trend" as TiedResNet against ResNeXt-50 32x4d).
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(type='TiedResNeXt'))
