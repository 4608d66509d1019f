"""Drawings of the Dynamic Stride Convolutions' inter-layer maps (docs/dsc.md).

:class:`~plugin.models.dsc_tracer.DSCTracer` puts every DSC layer's kernel centres in image pixels
(eq. M1); here they become a sampling density relative to the plain strided conv and one panel
per layer over the image.
"""
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..models.dsc_tracer import DSCSampling
from ..models.gaussian_blur import gaussian_blur
from .figures import pyplot


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
    plain = gaussian_blur(splat(grid), sigma)
    return (gaussian_blur(splat(points), sigma) / plain.clamp(min=0.5 * plain.mean().item()))[0, 0]


def plot_dsc_maps(image: np.ndarray, samplings: Sequence[DSCSampling], out_file: str,
                  compare: Optional[Sequence[DSCSampling]] = None, max_points: int = 4000,
                  title: Optional[str] = None):
    """One panel per DSC layer: the image, the relative sampling density, the centres.

    ``image`` is (H, W, 3) RGB uint8 in the network's input pixels (batch item 0 is drawn). With
    ``compare`` (the same layers of another checkpoint), each panel shows the density of
    ``samplings`` minus that of ``compare`` instead, and both sets of centres.
    Returns the matplotlib figure (saved to ``out_file``).
    """
    plt = pyplot()

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
