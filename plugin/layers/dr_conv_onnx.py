"""DRConv in standard ONNX ops: the form :class:`~.dr_conv.DRConv2d` takes while exported.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243), Sec. 3. The ops of :mod:`.dr_conv_function` sort the positions
by region with a host sync and run one GEMM per run of rows: a trace would freeze the runs of the
example input. This form computes the same function as the factorised path
(:func:`~.dr_conv_function.region_factor_conv`, every ``impl`` and ``m``) with ops every ONNX
runtime has, shapes dynamic:

1. ``M = argmax_j F_j`` (``ArgMax``) and each position's own kernels ``A[b, M, q]``
   (``GatherElements``);
2. the ``g + 1`` tap sums ``z_q = sum_t A[b, M, q, t] X_t`` over the ``kh kw`` taps ``X_t`` of
   every position (a ``Conv`` of each channel with one-hot kernels, then ``Mul`` and
   ``ReduceSum``): ``(g + 1) kh kw`` multiply-adds per position and input channel;
3. ``y = sum_q V[M, q] z_q``: for each region ``j``, its positions (``NonZero``) and their rows
   times ``V[j]`` (``Gather``, ``MatMul``): ``(g + 1) O`` per position and channel; then the
   rows back in position order (``TopK``, ``Gather``). ``m = 1`` is one ``MatMul``.

The generator's adaptive pooling to ``k x k`` is exported by :func:`adaptive_avg_pool2d`, two
``MatMul`` (torch's exporter only handles a static input size that ``k`` divides).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Pair = Tuple[int, int]


def adaptive_avg_pool2d(x: Tensor, size: Pair) -> Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` as ``P_h x P_w^T`` with averaging matrices built from
    ``x``'s size (bin ``i`` of ``n``: rows ``floor(i H / n)`` to ``ceil((i + 1) H / n)``)."""
    h, w = x.shape[-2:]
    return _averaging(h, size[0], x) @ x @ _averaging(w, size[1], x).t()


def _averaging(n_in: int, n: int, like: Tensor) -> Tensor:
    """``[n, n_in]``: row ``i`` averages bin ``i`` of adaptive pooling from ``n_in`` to ``n``."""
    i = torch.arange(n, device=like.device).unsqueeze(1)
    start, end = i * n_in // n, ((i + 1) * n_in + n - 1) // n
    pos = torch.arange(n_in, device=like.device)
    return ((pos >= start) & (pos < end)).to(like.dtype) / (end - start).to(like.dtype)


def region_factor_conv_onnx(x: Tensor, hidden: Tensor, weight: Tensor, guide: Optional[Tensor],
                            kernel_size: Pair, stride: Pair, padding: Pair,
                            dilation: Pair) -> Tensor:
    """:func:`~.dr_conv_function.region_factor_conv` (same arguments; ``guide`` ``None`` for
    ``m = 1``) in standard ops, ``[B, O, Ho, Wo]``."""
    m, q, o, c = weight.shape
    taps = kernel_size[0] * kernel_size[1]
    # the taps X_t of every channel: a conv of each channel with the kh kw one-hot kernels
    one_hot = torch.eye(taps, dtype=x.dtype, device=x.device).view(taps, 1, *kernel_size)
    cols = F.conv2d(x.reshape(-1, 1, *x.shape[2:]), one_hot, None, stride, padding, dilation)
    b, (ho, wo) = x.shape[0], cols.shape[2:]
    cols = cols.reshape(b, 1, c, taps, -1)  # [B, 1, C, T, P]
    kernels = hidden.reshape(b, m, (q - 1) * taps)
    if guide is None:  # one region: the sample's kernels at every position
        coef = kernels.reshape(b, q - 1, 1, taps, 1)
    else:
        region = guide.argmax(1).reshape(b, -1, 1)  # [B, P, 1]
        coef = kernels.gather(1, region.expand(-1, -1, (q - 1) * taps))  # A[b, M, q, t]
        coef = coef.transpose(1, 2).reshape(b, q - 1, 1, taps, -1)
    sums = torch.cat([(cols * coef).sum(3), cols.sum(3)], 1)  # z_q, the ones kernel's last
    rows = sums.permute(0, 3, 1, 2).reshape(-1, q * c)  # [N, (q, C)]
    weight = weight.permute(0, 2, 1, 3).reshape(m, o, q * c)
    if guide is None:
        out = rows @ weight[0].t()
    else:  # each region's rows times its V, then back to position order
        region = region.reshape(-1)
        index = [torch.nonzero(region == j).reshape(-1) for j in range(m)]
        out = torch.cat([rows.index_select(0, i) @ weight[j].t() for j, i in enumerate(index)])
        out = out.index_select(0, torch.cat(index).argsort())
    return out.reshape(b, ho, wo, o).permute(0, 3, 1, 2)
