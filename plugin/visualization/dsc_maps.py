"""Inter-layer interpretability maps of Dynamic Stride Convolutions.

Every DSC layer records where its kernel centres went, in its own input's pixels. The abstract of
张淑芳 et al. (Acta Electronica Sinica 2024) says these offsets give an inter-layer map at very low
cost; our construction: follow the chain of resolution-changing ops from the image to each DSC layer
and compose their position maps, so that layer l's centres land in IMAGE pixels::

    g_0 = identity,   g_l = g_{l-1} ∘ p_l      (p_l: output grid -> input pixels of op l)     (M1)

with p_l the recorded centres of a DSC layer and the plain centres s·i - p + d(k-1)/2 of any other
strided conv or pooling; stride-1 layers keep coordinates ("same" padding). ``∘`` is bilinear
interpolation of the previous map at the (fractional) positions, so g_l stays differentiable: the
allocation loss uses it in training. The maps need one forward and no backward.
"""
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.dynamic_stride_conv import DynamicStrideConv2d, grid_centres


class DSCSampling(NamedTuple):
    """One DSC layer's kernel centres in image pixels (x, y) after a traced forward."""
    name: str
    positions: Tensor  # (N, Ho, Wo, 2), differentiable when traced with grad
    grid: Tensor  # (N, Ho, Wo, 2), the same layer's centres with every DSC offset at zero
    stride: float  # image pixels per output cell of the layer (plain grid)


def _plain_centres(module: nn.Module, out_hw: Sequence[int], device) -> Tensor:
    """(Ho, Wo, 2) centres of a conv / pooling on its input grid."""
    names = ('kernel_size', 'stride', 'padding', 'dilation')  # pooling has no dilation: 1
    geometry = [getattr(module, name, 1) for name in names]
    cs = []
    for axis in (1, 0):  # x (width) then y (height); torch stores pairs as (y, x)
        k, s, p, d = (v if isinstance(v, int) else v[axis] for v in geometry)
        cs.append(grid_centres(out_hw[axis], k, s, p, d, device))
    return torch.stack(torch.meshgrid(cs[0], cs[1], indexing='xy'), -1)


def _resample(mapping: Tensor, points: Tensor) -> Tensor:
    """``mapping`` (N, H, W, 2) evaluated at fractional pixel ``points`` (N, h, w, 2), bilinear."""
    h, w = mapping.shape[1:3]
    grid = torch.stack([(2 * points[..., 0] + 1) / w - 1, (2 * points[..., 1] + 1) / h - 1], -1)
    out = F.grid_sample(mapping.permute(0, 3, 1, 2), grid.to(mapping.dtype), mode='bilinear',
                        padding_mode='border', align_corners=False)
    return out.permute(0, 2, 3, 1)


def _is_strided(module: nn.Module) -> bool:
    if isinstance(module, DynamicStrideConv2d):
        return True
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if isinstance(module.stride, (tuple, list)) else (module.stride, )
        return max(stride) > 1
    return False


class DSCTracer:
    """Records the resolution chain and the DSC centres of one forward of ``module`` (eq. M1).

    Use as ``with DSCTracer(backbone) as tracer: backbone(x)``, then :meth:`sampling`. Candidates:
    the strided convs and poolings outside DSC layers (their offset branches are not on the chain)
    and the DSC layers; an op joins the chain when its input has the chain's current resolution,
    which leaves out parallel branches such as a plain strided shortcut.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        inner = {id(m) for d in module.modules() if isinstance(d, DynamicStrideConv2d)
                 for m in d.modules() if m is not d}
        self.ops = [(name, m) for name, m in module.named_modules()
                    if _is_strided(m) and id(m) not in inner]
        self._handles = []

    def __enter__(self) -> 'DSCTracer':
        self.image_hw: Optional[Tuple[int, int]] = None
        self.calls: List[tuple] = []  # (name, module, input size, output size, live centres)
        self._live: Dict[int, Tensor] = {}

        def on_input(module, args):
            if self.image_hw is None:
                self.image_hw, self.device = tuple(args[0].shape[-2:]), args[0].device

        def on_positions(layer, positions):
            self._live[id(layer)] = positions

        def on_output(name):
            def hook(module, args, output):
                centres = self._live.pop(id(module), None)
                self.calls.append((name, module, tuple(args[0].shape[-2:]),
                                   tuple(output.shape[-2:]), centres))
            return hook

        self._handles.append(self.module.register_forward_pre_hook(on_input))
        for name, m in self.ops:
            if isinstance(m, DynamicStrideConv2d):
                self._handles.append(m.register_position_hook(on_positions))
            self._handles.append(m.register_forward_hook(on_output(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._live = {}

    def sampling(self) -> List[DSCSampling]:
        """Centres of every DSC layer of the traced forward, in image pixels (eq. M1)."""
        if self.image_hw is None:
            raise RuntimeError('DSCTracer.sampling() needs a forward inside the with-block')
        hw = self.image_hw
        mapping = grid = None  # image pixels of the current grid's cells; None: the image itself
        stride = 1.0
        out = []
        for name, module, in_hw, out_hw, centres in self.calls:
            if in_hw != hw:
                if centres is not None:
                    raise RuntimeError(f'DSC layer {name} sees a {in_hw} input where the chain '
                                       f'of strided ops gives {hw}: stride-1 layers must keep '
                                       'the size')
                continue  # a parallel branch (e.g. a plain strided shortcut)
            plain = _plain_centres(module, out_hw, self.device)
            batch = centres.shape[0] if centres is not None else \
                1 if mapping is None else mapping.shape[0]
            plain = plain.expand(batch, *plain.shape)
            centres = plain if centres is None else centres
            if mapping is None:
                mapping, grid = centres, plain
            else:
                mapping, grid = (t.expand(batch, *t.shape[1:]) for t in (mapping, grid))
                mapping, grid = _resample(mapping, centres), _resample(grid, plain)
            stride *= module.stride[0] if isinstance(module.stride, tuple) else module.stride
            if isinstance(module, DynamicStrideConv2d):
                out.append(DSCSampling(name, mapping, grid, float(stride)))
            hw = out_hw
        return out


def sampling_density(points: Tensor, grid: Tensor, stride: float, shape: Sequence[int],
                     cell: int = 4) -> Tensor:
    """Density of ``points`` (Ho, Wo, 2) relative to the plain ``grid``, on an image of ``shape``.

    Both sets are splatted bilinearly on ``cell``-pixel bins and smoothed by a Gaussian of sigma =
    ``stride`` / 2; the ratio is 1 where DSC samples like the plain strided conv, 2 where it spends
    twice the computation (bins the plain grid barely reaches, at the image border, are divided by
    half the mean plain density instead). Returns (ceil(H / cell), ceil(W / cell)).
    """
    h, w = (int(np.ceil(s / cell)) for s in shape)

    def splat(p):
        q = (p.reshape(-1, 2).float() - (cell - 1) / 2) / cell  # bin coordinates
        q0 = q.floor()
        f = q - q0
        acc = torch.zeros(h * w, dtype=torch.float32, device=p.device)
        for dx in (0, 1):
            for dy in (0, 1):
                x, y = q0[:, 0] + dx, q0[:, 1] + dy
                wgt = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
                ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
                acc.index_add_(0, (y[ok] * w + x[ok]).long(), wgt[ok])
        return acc.view(1, 1, h, w)

    sigma = max(stride / 2 / cell, 0.5)
    radius = int(np.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma)**2)
    k = (k / k.sum()).to(points.device)

    def blur(m):
        m = F.conv2d(F.pad(m, (radius, radius, 0, 0), mode='replicate'), k.view(1, 1, 1, -1))
        return F.conv2d(F.pad(m, (0, 0, radius, radius), mode='replicate'), k.view(1, 1, -1, 1))

    plain = blur(splat(grid))
    return (blur(splat(points)) / plain.clamp(min=0.5 * plain.mean().item()))[0, 0]


def dsc_maps(backbone: nn.Module, inputs: Tensor,
             repeat: int = 3) -> Tuple[List[DSCSampling], dict]:
    """Trace one forward (no grad) and time it against building the maps from its records.

    Returns the samplings and ``dict(forward_ms, positions_ms, density_ms, ratio)``, medians over
    ``repeat`` runs: ``positions_ms`` composes the position maps (eq. M1), ``density_ms`` computes
    every layer's density map; ``ratio`` is their sum over the forward.
    """
    times = {'forward_ms': [], 'positions_ms': [], 'density_ms': []}
    for _ in range(repeat):
        with torch.no_grad(), DSCTracer(backbone) as tracer:
            start = time.perf_counter()
            backbone(inputs)
            mid = time.perf_counter()
            samplings = tracer.sampling()
            end = time.perf_counter()
            for s in samplings:
                sampling_density(s.positions[0], s.grid[0], s.stride, inputs.shape[-2:])
            for key, t in zip(times, (mid - start, end - mid, time.perf_counter() - end)):
                times[key].append(t * 1e3)
    cost = {key: float(np.median(t)) for key, t in times.items()}
    cost['ratio'] = (cost['positions_ms'] + cost['density_ms']) / cost['forward_ms']
    return samplings, cost


def plot_dsc_maps(image: np.ndarray, samplings: Sequence[DSCSampling], out_file: str,
                  compare: Optional[Sequence[DSCSampling]] = None, max_points: int = 4000,
                  title: Optional[str] = None):
    """One panel per DSC layer: the image, the relative sampling density, the centres.

    ``image`` is (H, W, 3) RGB uint8 in the network's input pixels (batch item 0 is drawn). With
    ``compare`` (the same layers of another checkpoint), each panel shows the density of
    ``samplings`` minus that of ``compare`` instead, and both sets of centres.
    Returns the matplotlib figure (saved to ``out_file``).
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    n = len(samplings)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.4), dpi=110, squeeze=False)
    shape = image.shape[:2]
    for i, (ax, s) in enumerate(zip(axes[0], samplings)):
        size = float(np.clip(3000 / s.positions[0].shape[:2].numel(), 2, 30))
        density = sampling_density(s.positions[0], s.grid[0], s.stride, shape).cpu().numpy()
        extent = (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5)
        ax.imshow(image, extent=extent)
        if compare is None:
            im = ax.imshow(np.log2(np.clip(density, 1 / 8, 8)), cmap='magma', alpha=0.55,
                           vmin=-2, vmax=2, extent=extent)
            label = 'log2 density vs plain stride'
        else:
            other = sampling_density(compare[i].positions[0], compare[i].grid[0], s.stride,
                                     shape).cpu().numpy()
            im = ax.imshow(density - other, cmap='coolwarm', alpha=0.6, vmin=-1, vmax=1,
                           extent=extent)
            label = 'density difference'
            pts = compare[i].positions[0].reshape(-1, 2).cpu().numpy()
            pts = pts[::max(1, len(pts) // max_points)]
            ax.scatter(pts[:, 0], pts[:, 1], s=size, c='black', marker='.', linewidths=0)
        pts = s.positions[0].reshape(-1, 2).cpu().numpy()
        pts = pts[::max(1, len(pts) // max_points)]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, c='cyan', marker='.', linewidths=0)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(f'{s.name}\nstride {s.stride:g}, {tuple(s.positions.shape[1:3])} centres',
                     fontsize=9)
        ax.axis('off')
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label(label, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_file)
    return fig
