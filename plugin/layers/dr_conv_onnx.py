"""DRConv in standard ONNX ops: the form :class:`~.dr_conv.DRConv2d` takes while exported.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243), Sec. 3. The ops of :mod:`.dr_conv_function` sort the positions
by region with a host sync and run one GEMM per run of rows: a trace would freeze the runs of the
example input. This form computes the same function as the factorised path
(:func:`~.dr_conv_function.region_factor_conv`, every ``impl`` and ``m``) with ops every ONNX
runtime has, shapes dynamic:

1. ``M = argmax_j F_j`` (``ArgMax``) and each position's own kernels ``A[b, M, q]``
   (``GatherElements``);
2. the ``g + 1`` tap sums ``z_q = sum_t A[b, M, q, t] X_t`` over the ``kh kw`` shifted views
   ``X_t`` of the padded input (``Slice``, ``Mul``, ``Add``; faster in onnxruntime than taking
   the taps by a ``Conv`` with one-hot kernels): ``(g + 1) kh kw`` multiply-adds per position
   and input channel;
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
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    b, h, w = x.shape[0], x.shape[2], x.shape[3]
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    kernels = hidden.reshape(b, m, (q - 1) * kh * kw)
    if guide is None:  # one region: the sample's kernels at every position
        coef = kernels.reshape(b, q - 1, kh * kw, 1, 1, 1)
    else:
        region = guide.argmax(1).reshape(b, -1, 1)  # [B, P, 1]
        coef = kernels.gather(1, region.expand(-1, -1, kernels.shape[2]))  # A[b, M, q, t]
        coef = coef.transpose(1, 2).reshape(b, q - 1, kh * kw, 1, ho, wo)
    padded = F.pad(x, (pw, pw, ph, ph)).unsqueeze(1)  # [B, 1, C, Hp, Wp]
    weighted = box = None  # z_q for the generator's kernels q < g, and the ones kernel's
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        tap = padded[..., i * dh:i * dh + sh * (ho - 1) + 1:sh,
                     j * dw:j * dw + sw * (wo - 1) + 1:sw]  # X_t, [B, 1, C, Ho, Wo]
        term = tap * coef[:, :, t]
        weighted = term if weighted is None else weighted + term
        box = tap if box is None else box + tap
    rows = torch.cat([weighted, box], 1).permute(0, 3, 4, 1, 2).reshape(-1, q * c)  # (q, C)
    weight = weight.permute(0, 2, 1, 3).reshape(m, o, q * c)
    if guide is None:
        out = rows @ weight[0].t()
    else:  # each region's rows times its V, then back to position order
        region = region.reshape(-1)
        index = [torch.nonzero(region == j).reshape(-1) for j in range(m)]
        out = torch.cat([rows.index_select(0, i) @ weight[j].t() for j, i in enumerate(index)])
        out = out.index_select(0, torch.cat(index).argsort())
    return out.reshape(b, ho, wo, o).permute(0, 3, 1, 2)
