# TiedResNeSt-50: mmdet's ResNeSt-50 (2 radix splits, deep stem, avg-down) with TBC/TGC (B=2)
# entry 1x1 and split-attention 3x3 convs, the backbone of
# configs/tbc/mask-rcnn_tiedresnest50_fpn_1x_coco.py (docs/tbc.md). Same recipe as TiedResNet50.
# Paper (TBC, Table 1): TiedResNeSt-50-S above ResNeSt-50-S with 59% of its parameters and 82%
# of its FLOPs; ours is 57% / 65% of ResNeSt-50 (docs/tbc.md says why the "-S" sizes differ).
_base_ = './tiedresnet50_8xb32_in1k.py'
model = dict(backbone=dict(_delete_=True, type='TiedResNeSt', tied_B=2, stem_channels=64,
                           depth=50, radix=2, reduction_factor=4, avg_down_stride=True,
                           out_indices=(3, ), style='pytorch', norm_eval=False))
