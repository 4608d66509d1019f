# TiedResNeXt50-S (TBC paper, Table 1).
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(type='TiedResNeXt', arch='S'))
