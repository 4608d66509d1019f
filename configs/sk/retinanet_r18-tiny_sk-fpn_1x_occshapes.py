_base_ = '../demo/retinanet_r18-tiny_fpn_1x_occshapes.py'
# The demo detector with the SK-FPN neck (SK output convs and SK top-down fusion); CPU, seconds.
model = dict(neck=dict(type='SKFPN', sk_fusion=True))
