# The occlusion study's SKNet-14 tiny (8 groups of 4 channels, 16 base channels) pretrained on
# shape-classes: its checkpoint starts configs/study/pretrained/*_sknet14-tiny_*_pretrained.py
# (tools/study/pretrain_study.py).
_base_ = './_base_/shapecls_cpu.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SKNet', depth=14, groups=8, base_width=4, base_channels=16,
                  out_indices=(3, ), style='pytorch', norm_eval=False,
                  zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
