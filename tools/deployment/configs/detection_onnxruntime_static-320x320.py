# Export settings, kept apart from the model config as mmdeploy keeps them (its
# detection_onnxruntime_static.py): a whole detector with its post-processing (RetinaNet, Faster /
# Mask R-CNN), one 320x320 image, for onnxruntime.
#   python tools/deployment/export_onnx.py CONFIG [CKPT] --out det.onnx \
#       --deploy-cfg tools/deployment/configs/detection_onnxruntime_static-320x320.py
onnx_config = dict(shape=(320, 320), opset=17, dynamic=False, end2end=True)
