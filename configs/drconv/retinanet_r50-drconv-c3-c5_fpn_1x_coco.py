_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# mmdet's own ResNet-50 whose 3x3 convs in stages 2-4 (c3-c5) are DRConv (m = 8), through ResNet's
# dcn/stage_with_dcn slot: it builds the Bottleneck's conv2 as build_conv_layer(dcn, ...), and only
# that conv. The same network as retinanet_dr-r50_fpn_1x_coco.py (DRResNet), same checkpoint keys.
# ImageNet init as mmdet's base: the 13 DRConvs' conv2.guide.* and conv2.generator.* keys are new
# (their own init), the checkpoint's conv2.weight of those blocks is unused; the rest loads.
model = dict(backbone=dict(dcn=dict(type='DRConv', region_num=8),
                           stage_with_dcn=(False, True, True, True)))
