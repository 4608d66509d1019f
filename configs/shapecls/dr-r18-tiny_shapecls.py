# The occlusion study's DR-ResNet-18 tiny (16 base channels, DRConv m = 4 in stages 2-4)
# pretrained on shape-classes: its checkpoint starts
# configs/study/pretrained/*_dr-r18-tiny_*_pretrained.py (tools/study/pretrain_study.py).
_base_ = './_base_/shapecls_cpu.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='DRResNet', depth=18, base_channels=16, drconv=dict(region_num=4),
                  stage_with_drconv=(False, True, True, True), out_indices=(3, ),
                  style='pytorch', norm_eval=False, zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
