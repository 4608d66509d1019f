"""FLOP handles for the ops of this plugin's layers, by jit op name, beside the counter.

:func:`~plugin.analysis.complexity.module_complexity` hands this table to mmengine's
``FlopAnalyzer`` on every count (one multiply-add = one FLOP); the layers know nothing of
counting. A handle takes the jit node's ``(inputs, outputs)`` as fvcore's handles do.
"""
from math import prod
from typing import Callable, Dict

from mmengine.analysis.jit_handles import get_shape


def _region_matmul_flops(inputs: list, outputs: list) -> int:
    """DRConv's unfolded path: one multiply-add per output element and column (``O x K`` per
    position), as a conv."""
    return prod(get_shape(outputs[0])) * get_shape(inputs[1])[-1]


def _region_factor_conv_flops(inputs: list, outputs: list) -> int:
    """DRConv's factorised path: ``(g + 1) (k k + O)`` multiply-adds per output position and
    input channel."""
    b, o, ho, wo = get_shape(outputs[0])
    _, q, _, c = get_shape(inputs[2])
    return b * ho * wo * q * c * (prod(get_shape(inputs[1])[2:]) + o)


def _one_per_output_element(inputs: list, outputs: list) -> int:
    """One multiply-add per output element (``addcmul``: DRConv's filter generator, its grouped
    1x1 conv written as fused multiply-adds)."""
    return prod(get_shape(outputs[0]))


def _embedding_bag_flops(inputs: list, outputs: list) -> int:
    """DSC's bilinear gather: one multiply-add per gathered element, 4 per sample and channel."""
    indices, weight = inputs[1].type().sizes(), inputs[0].type().sizes()
    return prod(indices) * weight[-1]


FLOP_HANDLES: Dict[str, Callable] = {
    # plugin.layers.dr_conv_function (DRConv2d, impl='fast' and 'reference')
    'prim::PythonOp._RegionMatmul': _region_matmul_flops,
    'prim::PythonOp._RegionFactorConv': _region_factor_conv_flops,
    'prim::PythonOp._RegionSelect': lambda inputs, outputs: 0,  # a gather
    'aten::addcmul': _one_per_output_element,
    # plugin.layers.dynamic_stride_conv (dsc_conv2d's gather path, traced without grad)
    'aten::embedding_bag': _embedding_bag_flops,
}
