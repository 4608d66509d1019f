# The occlusion study's ResNet-18 baseline (16 base channels, mmdet's ResNet) pretrained on
# shape-classes: the control of the pretraining study, the layout that DR-ResNet-18 and
# DSC-ResNet-18 keep; its checkpoint starts
# configs/study/pretrained/*_r18-tiny_*_pretrained.py (tools/study/pretrain_study.py).
_base_ = './_base_/shapecls_cpu.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdet.ResNet', depth=18, base_channels=16, out_indices=(3, ),
                  style='pytorch', norm_eval=False, zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
