_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/occlusion_eval.py']
# mmdet's own ResNet-50 whose 3x3 convs in stages 2-4 (c3-c5) are TBC with B=2, through ResNet's
# dcn/stage_with_dcn slot: it builds the Bottleneck's conv2 as build_conv_layer(dcn, ...), and only
# that conv (conv_cfg would reach the 7x7 stem too, whose 3 input channels do not split into 2).
# ImageNet init as mmdet's base: no key is new, the 13 TBC weights are half as wide
# (planes/2 x planes/2 x 3 x 3), so they start from their own init; the rest loads.
model = dict(backbone=dict(dcn=dict(type='TBC', B=2), stage_with_dcn=(False, True, True, True)))
