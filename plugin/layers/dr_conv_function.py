"""Region-routed ops of DRConv: the masked select of every region's output (with the surrogate
gradient), and two fast ops that compute only each position's own region: a segment-GEMM matmul
with generated filters and a conv with the generator's filters kept factorised.

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
  filter (a segment-wise GEMM); grad-input (a scatter-add; a gather for 1x1 stride 1) and
  grad-weight reuse the sorted rows.
  Forward and the two gradients cost one matmul's FLOPs each; only the surrogate needs every
  region's output, ``m`` matmuls' worth, computed in the backward pass a chunk of rows at a time.
* :func:`region_factor_conv` takes the generator's factors instead of its filters (see there):
  ``(g + 1) (kh kw + O)`` multiply-adds per position and channel instead of ``kh kw O``.
"""
import threading
from itertools import accumulate
from typing import List, Tuple

import torch
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


def _segments(guide: Tensor) -> Tuple[Tensor, Tensor, Tensor, Segments]:
    """Positions (flat over ``[B, H, W]``) sorted by ``group = sample * m + region``, the row of
    every position in that order (to unsort rows with a gather, faster than ``index_copy_`` on
    CPU: docs/drconv.md), every position's group, and the ``(group, start, end)`` row range of
    every non-empty group."""
    b, m = guide.shape[:2]
    region = guide.max(1).indices  # argmax (the first maximum), much faster over dim 1 on CPU
    group = region.reshape(b, -1) + torch.arange(b, device=guide.device).unsqueeze(1) * m
    group = group.reshape(-1)
    counts = torch.bincount(group, minlength=b * m).tolist()  # the one host sync
    segments = [(g, end - n, end) for g, (n, end) in enumerate(zip(counts, accumulate(counts)))
                if n]
    order = torch.argsort(group, stable=True)
    place = torch.empty_like(order).index_copy_(0, order, torch.arange(
        order.numel(), device=order.device))
    return order, place, group, segments


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


def _padded_rows(x: Tensor, padding: Pair) -> Tuple[Tensor, torch.Size]:
    """``x`` zero-padded and channels-last as rows ``[B Hp Wp, C]`` (a reused buffer,
    :func:`_workspace`, valid until the next call), and its ``[B, Hp, Wp, C]`` shape."""
    x_cl = x.permute(0, 2, 3, 1)
    if not any(padding):
        return x_cl.reshape(-1, x.shape[1]), x_cl.shape
    (b, h, w, c), (ph, pw) = x_cl.shape, padding
    shape = torch.Size((b, h + 2 * ph, w + 2 * pw, c))
    padded = _workspace(x, 'padded', shape.numel()).view(shape)
    for border in (padded[:, :ph], padded[:, ph + h:], padded[:, ph:ph + h, :pw],
                   padded[:, ph:ph + h, pw + w:]):
        border.zero_()
    padded[:, ph:ph + h, pw:pw + w] = x_cl
    return padded.view(-1, c), shape


def _unpadded(grad_rows: Tensor, shape: torch.Size, padding: Pair) -> Tensor:
    """The gradient of :func:`_padded_rows`'s input from that of its rows."""
    (_, hp, wp, _), (ph, pw) = shape, padding
    return grad_rows.view(shape)[:, ph:hp - ph, pw:wp - pw].permute(0, 3, 1, 2)


def _sorted_rows(grad_y: Tensor, order: Tensor) -> Tensor:
    """The rows ``[N, O]`` of ``dL/dy`` in sorted order. Channels-last first: a gather of whole
    rows (``.sum().backward()`` hands an expanded tensor, slower to gather from directly:
    docs/drconv.md)."""
    rows = grad_y.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    return rows.reshape(-1, grad_y.shape[1]).index_select(0, order)


def _guide_gradient(guide: Tensor, place: Tensor, dot: Tensor) -> Tensor:
    """Eq. 8 from ``dot`` ``[m, N]``, Eq. 7 at the positions in sorted order (:func:`_segments`)."""
    b, m, ho, wo = guide.shape
    return softmax_surrogate(guide, dot.index_select(1, place).view(m, b, ho, wo).transpose(0, 1))


class _RegionMatmul(torch.autograd.Function):
    """Patches are gathered as ``K = (kh, kw, C)``; the smaller of them and the filters
    (``K = (C, kh, kw)``) is permuted to the other's order."""

    @staticmethod
    def forward(ctx, x, weight, guide, kernel_size, stride, padding, dilation):
        b, c, h, w = x.shape
        m, o, k = weight.shape[1:]
        order, place, _, segments = _segments(guide)
        index = _patch_index(order, (h, w), guide.shape[2:], kernel_size, stride, padding,
                             dilation)
        x_rows, x_shape = _padded_rows(x, padding)
        rows = x_rows.index_select(0, index).view(-1, k)  # [N, K], sorted
        flat_w = weight.reshape(b * m, o, k)
        taps_last = order.numel() > b * m * o  # permute the smaller: rows or filters
        if taps_last:
            flat_w = flat_w.view(-1, c, k // c).transpose(1, 2).reshape(b * m, o, k)
        else:
            rows = rows.view(-1, k // c, c).transpose(1, 2).reshape(-1, k)
        out = rows.new_empty(order.numel(), o)
        for g, start, end in segments:
            torch.mm(rows[start:end], flat_w[g].t(), out=out[start:end])
        y = out.index_select(0, place)
        ctx.save_for_backward(rows, flat_w, guide, order, place, index)
        ctx.segments, ctx.x_shape, ctx.padding, ctx.taps_last = (segments, x_shape, padding,
                                                                  taps_last)
        return y.view(b, *guide.shape[2:], o).permute(0, 3, 1, 2)  # channels-last memory

    @staticmethod
    def backward(ctx, grad_y):
        rows, flat_w, guide, order, place, index = ctx.saved_tensors
        b, m, ho, wo = guide.shape
        o, k = flat_w.shape[1:]
        c = ctx.x_shape[3]
        grad_sorted = _sorted_rows(grad_y, order)
        grad_x = grad_w = grad_guide = None

        if ctx.needs_input_grad[0]:
            grad_rows = grad_sorted.new_empty(order.numel(), k)
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end], flat_w[g], out=grad_rows[start:end])
            if not ctx.taps_last:
                grad_rows = grad_rows.view(-1, c, k // c).transpose(1, 2)
            if k == c and order.numel() == ctx.x_shape.numel() // c:  # 1x1, stride 1: a gather
                grad_x = grad_rows.reshape(-1, c).index_select(0, place)
            else:
                grad_x = grad_rows.new_zeros(ctx.x_shape.numel() // c, c).index_put_(
                    (index, ), grad_rows.reshape(-1, c), accumulate=True)  # scatter-add
            grad_x = _unpadded(grad_x, ctx.x_shape, ctx.padding)

        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(flat_w)  # a region without positions gets zero
            for g, start, end in ctx.segments:
                torch.mm(grad_sorted[start:end].t(), rows[start:end], out=grad_w[g])
            if ctx.taps_last:
                grad_w = grad_w.view(b * m, o, k // c, c).transpose(2, 3)
            grad_w = grad_w.reshape(b, m, o, k)

        if ctx.needs_input_grad[2]:  # Eq. 7: every region's output, a chunk of rows at a time
            dot = grad_sorted.new_empty(m, order.numel())
            w_all = flat_w.view(b, m * o, k)
            chunk = max(1, _chunk_elements(rows) // (m * o))
            y_buf = _workspace(rows, 'y', min(chunk, ho * wo) * m * o)
            for s in range(b):  # sample s owns the sorted rows [s Ho Wo, (s + 1) Ho Wo)
                for start in range(s * ho * wo, (s + 1) * ho * wo, chunk):
                    cut = slice(start, min(start + chunk, (s + 1) * ho * wo))
                    n = cut.stop - start
                    y_all = torch.mm(rows[cut], w_all[s].t(), out=y_buf[:n * m * o].view(n, -1))
                    dot[:, cut] = y_all.view(n, m, o).mul_(grad_sorted[cut].unsqueeze(1)).sum(2).t()
            grad_guide = _guide_gradient(guide, place, dot)
        return grad_x, grad_w, grad_guide, None, None, None, None


def region_factor_conv(x: Tensor, hidden: Tensor, weight: Tensor, guide: Tensor,
                       kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """DRConv with the generator's filters kept factorised, each position's own region only.

    With ``weight`` ``V`` ``[m, g + 1, O, C]`` and the kernels ``A[b, j, q] = hidden[b, j g + q]``
    (``q < g``, ``[kh, kw]``), ``A[b, j, g] = 1``, the generated filters are
    ``W_j[:, :, t] = sum_q V[j, q] A[j, q, t]``, so at an output position of region ``j`` with
    patch ``P`` (``[C, kh kw]``)

        y = sum_q V[j, q] (P A[b, j, q])        (``g + 1`` weighted sums of the taps, 1x1 each):

    ``(g + 1) (kh kw + O)`` multiply-adds per position and input channel forward (a
    convolution: ``kh kw O``). The positions are sorted by (sample, region) and taken a chunk at
    a time: the chunk's patches are gathered tap-major from the padded channels-last input, and
    each run of one region costs a ``[g + 1, kh kw]`` and ``g + 1`` ``[C, O]`` GEMMs. The
    surrogate (Eq. 7) needs every region's output, ``<dL/dy, W_j P> =
    sum_q <V[j, q]^T dL/dy, P A[b, j, q]>`` for all ``j``: in the backward pass, per chunk, every
    region's maps ``P A[j, q]`` (one ``[m g + 1, kh kw]`` GEMM: the ones kernel is shared), their
    1x1 convs (two GEMMs batched over the regions, the shared map's and the rest's; ``m (g + 1)
    O`` multiply-adds per position and channel) and the dot with ``dL/dy``. Only the input (the
    guide conv keeps it anyway), the kernels and the sort are kept for backward.
    """
    return _RegionFactorConv.apply(x, hidden, weight, guide, kernel_size, stride, padding,
                                   dilation)


def _tap_slices(in_size: Pair, out_size: Pair, kernel_size: Pair, stride: Pair, padding: Pair,
                dilation: Pair) -> list:
    """``(t, input rows, input cols, output rows, output cols)`` for every tap ``t`` that falls
    inside the (unpadded) input at some output position: slices of the input under tap ``t``
    and of the output positions putting it there."""
    per_dim = []
    for size, out, k, s, p, d in zip(in_size, out_size, kernel_size, stride, padding, dilation):
        dim = []
        for i in range(k):  # output u reads input u s + i d - p
            offset = i * d - p
            first, last = max(0, -(offset // s)), min(out - 1, (size - 1 - offset) // s)
            dim.append((slice(first * s + offset, last * s + offset + 1, s),
                        slice(first, last + 1)) if first <= last else None)
        per_dim.append(dim)
    kw = kernel_size[1]
    return [(i * kw + j, rows[0], cols[0], rows[1], cols[1])
            for i, rows in enumerate(per_dim[0]) for j, cols in enumerate(per_dim[1])
            if rows is not None and cols is not None]


def _chunks(segments: Segments, m: int, rows: int, limit: int) -> List[tuple]:
    """Runs of at most ``limit`` sorted rows of one sample, ``(sample, start, end, pieces)``,
    with ``pieces`` the ``(region, start, end)`` parts of the segments inside the run."""
    chunks = []
    for group, first, end in segments:
        s, j = divmod(group, m)
        while first < end:
            if not chunks or chunks[-1][0] != s or chunks[-1][2] == chunks[-1][1] + limit:
                start = max(first, s * rows + (first - s * rows) // limit * limit)
                chunks.append([s, start, start, []])
            stop = min(end, chunks[-1][1] + limit)
            chunks[-1][2] = stop
            chunks[-1][3].append((j, first, stop))
            first = stop
    return chunks


# a chunk of the surrogate has at most CHUNK_ELEMENTS / (m (g + 1) C) positions (factorised;
# unfolded: / (m O)). Its buffers (every region's maps and outputs, about that many values) stay
# in a CPU's last-level cache; a GPU takes larger chunks (fewer kernel launches per layer,
# buffers of 64 MB in fp32)
CHUNK_ELEMENTS = dict(cpu=1 << 20, cuda=1 << 24)


def _chunk_elements(like: Tensor) -> int:
    return CHUNK_ELEMENTS.get(like.device.type, CHUNK_ELEMENTS['cuda'])


_workspaces = threading.local()


# scratch buffers up to this many elements (16 MB in fp32) are kept between calls on CPU
WORKSPACE_ELEMENTS = 1 << 22


def _workspace(like: Tensor, name: str, size: int) -> Tensor:
    """A reused buffer of ``size`` elements for scratch (CPU: a fresh allocation of megabytes
    costs page faults on every call; CUDA's caching allocator does not need it; a trace must not
    see tensors of an earlier one; larger buffers are allocated per call)."""
    if like.device.type != 'cpu' or torch.jit.is_tracing() or size > WORKSPACE_ELEMENTS:
        return like.new_empty(size)
    cache = _workspaces.__dict__.setdefault('buffers', {})
    buf = cache.get((name, like.dtype))
    if buf is None or buf.numel() < size:
        buf = cache[name, like.dtype] = like.new_empty(size)
    return buf[:size]


def _region_major(maps: Tensor, m: int, g: int) -> Tensor:
    """``[m g, n, C]`` maps as ``[m, n, g C]``, columns ``(q, C)`` per region (a view if
    g = 1)."""
    n, c = maps.shape[1:]
    if g == 1:
        return maps
    return maps.view(m, g, n, c).transpose(1, 2).reshape(m, n, g * c)


class _RegionFactorConv(torch.autograd.Function):
    """Saved: the input, the kernels ``[B, m, g + 1, T]`` (ones for ``q = g``), the sort and every
    position's group; the backward pass pads the input again (a reused buffer) and gathers each
    chunk's patches again."""

    @staticmethod
    def forward(ctx, x, hidden, weight, guide, kernel_size, stride, padding, dilation):
        (b, c, h, w), (m, q, o) = map(int, x.shape), map(int, weight.shape[:3])  # ints in a trace
        taps = kernel_size[0] * kernel_size[1]
        order, place, group, segments = _segments(guide)
        index = _patch_index(order, (h, w), guide.shape[2:], kernel_size, stride, padding,
                             dilation).view(-1, taps).t()  # [T, N]
        rows = _padded_rows(x, padding)[0]
        kernels = torch.cat([hidden.reshape(b, m, q - 1, taps),
                             hidden.new_ones(b, m, 1, taps)], 2)
        limit = _chunk_elements(x) // (m * q * c)
        chunks = _chunks(segments, m, order.numel() // b, max(1, limit))
        longest = max(end - start for _, start, end, _ in chunks)
        cols_buf = _workspace(rows, 'cols', taps * longest * c)
        own_buf = _workspace(rows, 'own', q * longest * c)
        out = rows.new_empty(order.numel(), o)
        for s, first, last, pieces in chunks:
            cols = torch.index_select(rows, 0, index[:, first:last].reshape(-1),
                                      out=cols_buf[:taps * (last - first) * c].view(-1, c))
            cols = cols.view(taps, -1)
            for j, start, end in pieces:
                part = slice((start - first) * c, (end - first) * c)
                own = torch.mm(kernels[s, j], cols[:, part],
                               out=own_buf[:q * (end - start) * c].view(q, -1))
                torch.mm(own[0].view(-1, c), weight[j, 0].t(), out=out[start:end])
                for i in range(1, q):
                    out[start:end].addmm_(own[i].view(-1, c), weight[j, i].t())
        y = out.index_select(0, place)
        ctx.save_for_backward(x, kernels, weight, guide, order, place, group, index)
        ctx.chunks, ctx.longest, ctx.padding = chunks, longest, padding
        ctx.taps = _tap_slices((h, w), guide.shape[2:], kernel_size, stride, padding, dilation)
        ctx.hidden_shape = hidden.shape
        return y.view(b, *guide.shape[2:], o).permute(0, 3, 1, 2)  # channels-last memory

    @staticmethod
    def backward(ctx, grad_y):
        x, kernels, weight, guide, order, place, group, index = ctx.saved_tensors
        rows = _padded_rows(x, ctx.padding)[0]
        b, m, ho, wo = guide.shape
        q, o, c = weight.shape[1:]
        taps, longest = kernels.shape[3], ctx.longest
        grad_sorted = _sorted_rows(grad_y, order)
        grad_w, grad_k = torch.zeros_like(weight), torch.zeros_like(kernels)
        dot = grad_sorted.new_empty(m, order.numel())
        rank = m * (q - 1)
        distinct = torch.cat([kernels[:, :, :q - 1].reshape(b, rank, taps),
                              kernels[:, :1, q - 1]], 1)  # the ones kernel is every region's
        box_t = weight[:, q - 1].transpose(1, 2)  # V[j, g]^T, [m, C, O]
        weight_t = weight[:, :q - 1].permute(0, 1, 3, 2).reshape(m, -1, o)  # V[j, q < g]^T
        cols_buf, maps_buf, y_buf = (
            _workspace(rows, name, size * longest) for name, size in (
                ('cols', taps * c), ('maps', (rank + 1) * c), ('y', m * o)))
        grad_own = _workspace(rows, 'grad_own', q * order.numel() * c).view(q, -1, c)
        for s, first, last, pieces in ctx.chunks:
            n, flat = last - first, index[:, first:last].reshape(-1)
            cols = torch.index_select(rows, 0, flat, out=cols_buf[:taps * n * c].view(-1, c))
            cols, grad = cols.view(taps, -1), grad_sorted[first:last]
            # every region's maps P A[j, q] (rows (j, q < g), then the ones kernel's)
            maps = torch.mm(distinct[s], cols,
                            out=maps_buf[:(rank + 1) * n * c].view(rank + 1, -1)).view(-1, n, c)
            # Eq. 7: every region's output W_j P = sum_q V[j, q] (P A[j, q]), [m, n, O] ...
            y = torch.bmm(maps[rank].expand(m, n, c), box_t, out=y_buf[:m * n * o].view(m, n, o))
            y.baddbmm_(_region_major(maps[:rank], m, q - 1), weight_t)
            dot[:, first:last] = y.mul_(grad).sum(2)  # ... dotted with dL/dy
            for j, start, end in pieces:
                part, local = (slice((start - first) * c, (end - first) * c),
                               slice(start - first, end - first))
                for i in range(q):
                    torch.mm(grad[local], weight[j, i], out=grad_own[i, start:end])
                    own_map = maps[j * (q - 1) + i, local] if i < q - 1 else maps[rank, local]
                    grad_w[j, i].addmm_(grad[local].t(), own_map)
                own = grad_own[:, start:end].reshape(q, -1)
                grad_k[s, j].addmm_(own, cols[:, part].t())
        # dL/dX: each tap t of the own maps, at the positions' places (col2im, one tap at a time)
        unsorted = _workspace(rows, 'unsorted', grad_own.numel()).view(grad_own.shape)
        grad_own = torch.index_select(grad_own, 1, place, out=unsorted).view(q, b, ho, wo, c)
        coeff = kernels[:, :, :q - 1].reshape(b * m, -1).index_select(0, group).view(
            b, ho, wo, q - 1, -1, 1)  # A[M, q] at each position
        grad_x = rows.new_zeros(b, *x.shape[2:], c)
        for t, in_rows, in_cols, out_rows, out_cols in ctx.taps:
            view, own = grad_x[:, in_rows, in_cols], grad_own[:, :, out_rows, out_cols]
            view.add_(own[q - 1])
            for i in range(q - 1):
                view.addcmul_(coeff[:, out_rows, out_cols, i, t], own[i])
        grad_x = grad_x.permute(0, 3, 1, 2)
        grad_guide = _guide_gradient(guide, place, dot)
        grad_hidden = grad_k[:, :, :q - 1].reshape(ctx.hidden_shape)
        return grad_x, grad_hidden, grad_w, grad_guide, None, None, None, None
