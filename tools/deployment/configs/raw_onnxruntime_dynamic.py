# Export settings, kept apart from the model config as mmdeploy keeps them: the raw outputs of any
# model of ours (mmdet's tensor mode), batch, height and width dynamic, traced at 320x320.
#   python tools/deployment/export_onnx.py CONFIG [CKPT] --out raw.onnx \
#       --deploy-cfg tools/deployment/configs/raw_onnxruntime_dynamic.py
onnx_config = dict(shape=(320, 320), opset=17, dynamic=True, end2end=False)
