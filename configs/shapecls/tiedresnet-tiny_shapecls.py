# The demo detector's backbone (tiny TiedResNet) pretrained on shape-classes: its checkpoint
# starts configs/demo/retinanet_tiedresnet-tiny_fpn_1x_occshapes_pretrained.py (the CPU stand-in
# of ImageNet -> COCO).
_base_ = './_base_/shapecls_cpu.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TiedResNet', depth=14, arch='tiny', base_channels=16, out_indices=(3, ),
                  style='pytorch', norm_eval=False, zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
