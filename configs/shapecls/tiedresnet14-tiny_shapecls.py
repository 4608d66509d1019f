# The occlusion study's TiedResNet-14 tiny (28 base channels) pretrained on shape-classes: its
# checkpoint starts configs/study/pretrained/*_tiedresnet14-tiny_*_pretrained.py
# (tools/study/pretrain_study.py).
_base_ = './_base_/shapecls_cpu.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TiedResNet', depth=14, arch='tiny', base_channels=28, out_indices=(3, ),
                  style='pytorch', norm_eval=False, zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=896,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
