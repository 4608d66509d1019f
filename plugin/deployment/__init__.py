"""Deployment: ONNX export of any model of the plugin, checked against PyTorch in onnxruntime."""
from .onnx_export import (SUPPORTED_OPSETS, OnnxExportError, export_onnx,  # noqa: F401
                          max_abs_diff, run_onnxruntime)
