_base_ = './retinanet_r50_sk-fpn_1x_coco.py'
# SK output convs and SK selection (instead of the sum) in the top-down fusion.
model = dict(neck=dict(sk_fusion=True))
