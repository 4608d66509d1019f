# TiedResNet101-S (TBC paper, Table 1: the -S widths at depth 101).
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(depth=101, arch='S'))
