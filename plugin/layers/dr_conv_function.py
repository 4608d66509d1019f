"""Region-routed ops of DRConv: the masked select of every region's output (with the surrogate
gradient) and a fast segment-GEMM matmul that computes only each position's own region.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243), Sec. 3.1. The guided mask is ``M = argmax_j F_j`` of the guided
feature ``F`` ``[B, m, H, W]`` (Eq. 4). The argmax has no gradient; the guide gets the paper's
surrogate instead (Eq. 6-8): the one-hot mask is replaced by ``F^ = softmax(F)`` in the backward
pass, so with ``Y_j`` the output region ``j``'s filter gives at a position

    dL/dF^_j = <dL/dY, Y_j>,     dL/dF = F^ * (dL/dF^ - <F^, dL/dF^>).

* :func:`region_select` takes every region's output ``Y_j`` and keeps ``Y_M``.
* :func:`region_matmul` takes columns ``X`` ``[B, K, H, W]`` and per-sample region filters ``W``
  ``[B, m, O, K]`` and returns ``Y = W[b, M] @ X[b, :, u, v]`` at every position without the other
  regions: it sorts the positions by (sample, region) and multiplies each run of rows by its own
  filter (a segment-wise GEMM); grad-input and grad-weight reuse the sorted rows. Forward and the
  two gradients cost one matmul's FLOPs each; only the surrogate needs every region's output,
  ``m`` matmuls' worth, computed in the backward pass a chunk of positions at a time.
"""
from itertools import accumulate
from typing import List, Tuple

import torch
from torch import Tensor

Segments = List[Tuple[int, int, int]]


def softmax_surrogate(guide: Tensor, dot: Tensor) -> Tensor:
    """``dL/dF`` of Eq. 8 from ``dot[:, j] = dL/dF^_j`` (Eq. 7); softmax over dim 1, in >= fp32."""
    dtype = torch.promote_types(guide.dtype, torch.float32)
    prob = torch.softmax(guide.to(dtype), dim=1)
    dot = dot.to(dtype)
    return (prob * (dot - (prob * dot).sum(1, keepdim=True))).to(guide.dtype)


def region_select(y_all: Tensor, guide: Tensor) -> Tensor:
    """``y_all[:, argmax(guide)]`` of every region's output ``y_all`` ``[B, m, O, H, W]``, with
    the surrogate gradient for ``guide`` (Eq. 7 needs exactly these outputs)."""
    return _RegionSelect.apply(y_all, guide)


class _RegionSelect(torch.autograd.Function):
    """``y = y_all[:, argmax(guide)]`` with the softmax surrogate gradient for ``guide``."""

    @staticmethod
    def forward(ctx, y_all: Tensor, guide: Tensor) -> Tensor:
        index = guide.argmax(1, keepdim=True).unsqueeze(2)  # [B, 1, 1, H, W]
        index = index.expand(-1, -1, y_all.shape[2], -1, -1)
        ctx.save_for_backward(y_all, guide, index)
        return y_all.gather(1, index).squeeze(1)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        y_all, guide, index = ctx.saved_tensors
        grad_all = torch.zeros_like(y_all).scatter_(1, index, grad_y.unsqueeze(1))
        dot = (y_all * grad_y.unsqueeze(1)).sum(2)  # Eq. 7
        return grad_all, softmax_surrogate(guide, dot)


def region_matmul(cols: Tensor, weight: Tensor, guide: Tensor) -> Tensor:
    """``y[b, :, u, v] = weight[b, M[b, u, v]] @ cols[b, :, u, v]`` (``cols`` ``[B, K, H, W]``,
    ``weight`` ``[B, m, O, K]``, ``guide`` ``[B, m, H, W]``), one matmul's cost forward."""
    return _RegionMatmul.apply(cols, weight, guide)


def _segments(guide: Tensor) -> Tuple[Tensor, Segments]:
    """Positions (flat over ``[B, H, W]``) sorted by ``group = sample * m + region``, and the
    ``(group, start, end)`` row range of every non-empty group."""
    b, m = guide.shape[:2]
    group = guide.argmax(1).reshape(b, -1) + torch.arange(b, device=guide.device).unsqueeze(1) * m
    group = group.reshape(-1)
    counts = torch.bincount(group, minlength=b * m).tolist()  # the one host sync
    segments = [(g, end - n, end) for g, (n, end) in enumerate(zip(counts, accumulate(counts)))
                if n]
    return torch.argsort(group, stable=True), segments


class _RegionMatmul(torch.autograd.Function):

    @staticmethod
    def forward(ctx, cols, weight, guide):
        b, k, h, w = cols.shape
        o = weight.shape[2]
        order, segments = _segments(guide)
        rows = cols.permute(0, 2, 3, 1).reshape(-1, k).index_select(0, order)  # sorted
        flat_w = weight.reshape(-1, o, k)
        out = rows.new_empty(order.numel(), o)
        for g, start, end in segments:
            torch.mm(rows[start:end], flat_w[g].t(), out=out[start:end])
        y = torch.empty_like(out).index_copy_(0, order, out)
        ctx.save_for_backward(cols, weight, guide, order)
        ctx.segments = segments
        return y.view(b, h, w, o).permute(0, 3, 1, 2)  # NCHW shape, channels-last memory

    @staticmethod
    def backward(ctx, grad_y):
        cols, weight, guide, order = ctx.saved_tensors
        b, k, h, w = cols.shape
        m, o = weight.shape[1:3]
        flat_w = weight.reshape(-1, o, k)
        grad_sorted = grad_y.permute(0, 2, 3, 1).reshape(-1, o).index_select(0, order)
        grad_cols = grad_w = grad_guide = None

        if ctx.needs_input_grad[0]:
            grad_rows = grad_sorted.new_empty(order.numel(), k)
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end], flat_w[g], out=grad_rows[start:end])
            grad_cols = torch.empty_like(grad_rows).index_copy_(0, order, grad_rows)
            grad_cols = grad_cols.view(b, h, w, k).permute(0, 3, 1, 2)

        if ctx.needs_input_grad[1]:
            rows = cols.permute(0, 2, 3, 1).reshape(-1, k).index_select(0, order)
            grad_w = torch.zeros_like(flat_w)  # a region without positions gets zero
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end].t(), rows[start:end], out=grad_w[g])
            grad_w = grad_w.view(weight.shape)

        if ctx.needs_input_grad[2]:  # Eq. 7: every region's output, a chunk of columns at a time
            grad_t = grad_y.reshape(b, o, h * w)
            cols_t = cols.reshape(b, k, h * w)
            dot = grad_t.new_empty(b, m, h * w)
            chunk = max(1, (1 << 23) // (m * o))
            for s in range(b):
                w_s = weight[s].reshape(m * o, k)
                for start in range(0, h * w, chunk):
                    cut = slice(start, start + chunk)
                    y_all = torch.mm(w_s, cols_t[s, :, cut]).view(m, o, -1)
                    dot[s, :, cut] = (y_all * grad_t[s, :, cut]).sum(1)
            grad_guide = softmax_surrogate(guide, dot.view(b, m, h, w))
        return grad_cols, grad_w, grad_guide
