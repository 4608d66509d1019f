"""Region-routed ops of DRConv: the masked select of every region's output (with the surrogate
gradient) and a fast segment-GEMM matmul that computes only each position's own region.

Paper: "Dynamic Region-Aware Convolution", Chen et al., CVPR 2021
(https://arxiv.org/abs/2003.12243), Sec. 3.1. The guided mask is ``M = argmax_j F_j`` of the guided
feature ``F`` ``[B, m, H, W]`` (Eq. 4). The argmax has no gradient; the guide gets the paper's
surrogate instead (Eq. 6-8): the one-hot mask is replaced by ``F^ = softmax(F)`` in the backward
pass, so with ``Y_j`` the output region ``j``'s filter gives at a position

    dL/dF^_j = <dL/dY, Y_j>,     dL/dF = F^ * (dL/dF^ - <F^, dL/dF^>).

* :func:`region_select` takes every region's output ``Y_j`` and keeps ``Y_M``.
* :func:`region_matmul` takes an input ``X`` ``[B, C, H, W]`` with a conv geometry and
  per-sample region filters ``W`` ``[B, m, O, C kh kw]`` and returns ``Y = W[b, M] @ P`` at every
  output position (``P`` its patch, flattened like ``F.unfold``) without the other regions: it
  sorts the positions by (sample, region), gathers their patches in that order from the padded
  channels-last input (one copy, no ``F.unfold``) and multiplies each run of rows by its own
  filter (a segment-wise GEMM); grad-input (a scatter-add) and grad-weight reuse the sorted rows.
  Forward and the two gradients cost one matmul's FLOPs each; only the surrogate needs every
  region's output, ``m`` matmuls' worth, computed in the backward pass a chunk of rows at a time.
"""
from itertools import accumulate
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Pair = Tuple[int, int]
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


def region_matmul(x: Tensor, weight: Tensor, guide: Tensor, kernel_size: Pair = (1, 1),
                  stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1)) -> Tensor:
    """``y[b, :, u, v] = weight[b, M[b, u, v]] @ patch[b, :, u, v]`` (``x`` ``[B, C, H, W]``,
    ``weight`` ``[B, m, O, C kh kw]``, ``guide`` ``[B, m, Ho, Wo]``), with ``patch`` the
    ``F.unfold`` columns of the conv geometry (the 1x1 default: ``x`` itself), one matmul's cost
    forward."""
    return _RegionMatmul.apply(x, weight, guide, kernel_size, stride, padding, dilation)


def _segments(guide: Tensor) -> Tuple[Tensor, Segments]:
    """Positions (flat over ``[B, H, W]``) sorted by ``group = sample * m + region``, and the
    ``(group, start, end)`` row range of every non-empty group."""
    b, m = guide.shape[:2]
    region = guide.max(1).indices  # argmax (the first maximum), much faster over dim 1 on CPU
    group = region.reshape(b, -1) + torch.arange(b, device=guide.device).unsqueeze(1) * m
    group = group.reshape(-1)
    counts = torch.bincount(group, minlength=b * m).tolist()  # the one host sync
    segments = [(g, end - n, end) for g, (n, end) in enumerate(zip(counts, accumulate(counts)))
                if n]
    return torch.argsort(group, stable=True), segments


def _patch_index(order: Tensor, in_size: Pair, out_size: Pair, kernel_size: Pair,
                 stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """Rows of the padded channels-last input ``[B Hp Wp, C]`` under the taps (``kh kw``, in
    that order) of the patches at the positions ``order`` (flat over ``[B, Ho, Wo]``), flat."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    hp, wp = (size + 2 * p for size, p in zip(in_size, padding))
    ho, wo = out_size
    sample, pos = order.div(ho * wo, rounding_mode='floor'), order % (ho * wo)
    corner = (sample * hp + pos.div(wo, rounding_mode='floor') * sh) * wp + pos % wo * sw  # [N]
    taps = torch.arange(kh, device=order.device).unsqueeze(1) * (dh * wp) + \
        torch.arange(kw, device=order.device) * dw  # [kh, kw]
    return (corner.unsqueeze(1) + taps.view(-1)).view(-1)


class _RegionMatmul(torch.autograd.Function):
    """Patches are gathered as ``K = (kh, kw, C)``; the smaller of them and the filters
    (``K = (C, kh, kw)``) is permuted to the other's order."""

    @staticmethod
    def forward(ctx, x, weight, guide, kernel_size, stride, padding, dilation):
        b, c, h, w = x.shape
        m, o, k = weight.shape[1:]
        order, segments = _segments(guide)
        index = _patch_index(order, (h, w), guide.shape[2:], kernel_size, stride, padding,
                             dilation)
        x_cl = x.permute(0, 2, 3, 1)  # [B, H, W, C]
        if any(padding):
            x_cl = F.pad(x_cl, (0, 0, padding[1], padding[1], padding[0], padding[0]))
        rows = x_cl.reshape(-1, c).index_select(0, index).view(-1, k)  # [N, K], sorted
        flat_w = weight.reshape(b * m, o, k)
        taps_last = order.numel() > b * m * o  # permute the smaller: rows or filters
        if taps_last:
            flat_w = flat_w.view(-1, c, k // c).transpose(1, 2).reshape(b * m, o, k)
        else:
            rows = rows.view(-1, k // c, c).transpose(1, 2).reshape(-1, k)
        out = rows.new_empty(order.numel(), o)
        for g, start, end in segments:
            torch.mm(rows[start:end], flat_w[g].t(), out=out[start:end])
        y = torch.empty_like(out).index_copy_(0, order, out)
        ctx.save_for_backward(rows, flat_w, guide, order, index)
        ctx.segments, ctx.x_shape, ctx.padding, ctx.taps_last = (segments, x_cl.shape, padding,
                                                                  taps_last)
        return y.view(b, *guide.shape[2:], o).permute(0, 3, 1, 2)  # channels-last memory

    @staticmethod
    def backward(ctx, grad_y):
        rows, flat_w, guide, order, index = ctx.saved_tensors
        b, m, ho, wo = guide.shape
        o, k = flat_w.shape[1:]
        _, hp, wp, c = ctx.x_shape
        grad_sorted = grad_y.permute(0, 2, 3, 1).reshape(-1, o).index_select(0, order)
        grad_x = grad_w = grad_guide = None

        if ctx.needs_input_grad[0]:
            grad_rows = grad_sorted.new_empty(order.numel(), k)
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end], flat_w[g], out=grad_rows[start:end])
            if not ctx.taps_last:
                grad_rows = grad_rows.view(-1, c, k // c).transpose(1, 2)
            grad_x = grad_rows.new_zeros(b * hp * wp, c).index_put_(  # a scatter-add
                (index, ), grad_rows.reshape(-1, c), accumulate=True)
            (ph, pw), grad_x = ctx.padding, grad_x.view(b, hp, wp, c)
            grad_x = grad_x[:, ph:hp - ph, pw:wp - pw].permute(0, 3, 1, 2)

        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(flat_w)  # a region without positions gets zero
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end].t(), rows[start:end], out=grad_w[g])
            if ctx.taps_last:
                grad_w = grad_w.view(b * m, o, k // c, c).transpose(2, 3)
            grad_w = grad_w.reshape(b, m, o, k)

        if ctx.needs_input_grad[2]:  # Eq. 7: every region's output, a chunk of rows at a time
            dot = grad_sorted.new_empty(order.numel(), m)
            w_all = flat_w.view(b, m * o, k)
            chunk = max(1, (1 << 23) // (m * o))
            for s in range(b):  # sample s owns the sorted rows [s Ho Wo, (s + 1) Ho Wo)
                for start in range(s * ho * wo, (s + 1) * ho * wo, chunk):
                    cut = slice(start, min(start + chunk, (s + 1) * ho * wo))
                    y_all = torch.mm(rows[cut], w_all[s].t()).view(-1, m, o)
                    dot[cut] = (y_all * grad_sorted[cut].unsqueeze(1)).sum(2)
            dot = torch.empty_like(dot).index_copy_(0, order, dot)
            grad_guide = softmax_surrogate(guide, dot.view(b, ho, wo, m).permute(0, 3, 1, 2))
        return grad_x, grad_w, grad_guide, None, None, None, None
