# Shape-classes (tools/dataset/make_shape_classes.py: 6 classes, 400 + 50 images per class at
# 64 px), the ImageNet stand-in of the CPU path: mmpretrain's ImageNet pipeline at 64 px (random
# resized crop, flips), AdamW with weight decay and a cosine schedule; a few minutes on a 2-core CPU.
# The classifiers set zero_init_residual=False (mmpretrain's ResNet default; mmdet's is True): with
# one block per stage and the last BN of every block at zero, the tiny nets stayed at chance.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
data_root = 'data/shape_classes/'
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'ellipse', 'cross', 'star'))
data_preprocessor = dict(num_classes=6, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=64, edge='short'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt',
                 data_prefix='train', metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/val.txt',
                 data_prefix='val', metainfo=metainfo, pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 20
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=4)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)
]
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
# BN trains without SyncBN: average its buffers over the processes before validation and saving
custom_hooks = [dict(type='SyncBuffersHook')]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
