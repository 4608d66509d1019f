_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
# DeepLabV3 with DSC-ResNet-50-D8: ResNetV1c's layout (deep stem, output stride 8 by dilation) whose
# strided convs are DSC: the deep stem's first conv and stage 2 (stages 3-4 are dilated, stride 1).
# mmdet's ResNet has no contract_dilation: the first block of stages 3-4 uses the full dilation.
# The ImageNet ResNet-50-V1c checkpoint (model.pretrained) loads as is.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='DSCResNet',
        depth=50,
        deep_stem=True,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        out_indices=(0, 1, 2, 3),
        stage_with_dsc=(False, True, False, False),
        dsc_stem=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'))
