"""DRConv guided masks over an image, one colour per region: the paper's Fig. 1 for any image.

:func:`record_region_masks` collects every DRConv layer's guided mask ``argmax_j F_j`` during a
forward pass; :func:`overlay_regions` blends one mask over the image and
:func:`draw_region_masks` writes a PNG per layer and a grid of all of them.
"""
import os
import os.path as osp
import re
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
from torch import nn

from .figures import pyplot, save_figure


@contextmanager
def record_region_masks(model: nn.Module) -> Iterator[Dict[str, dict]]:
    """Within the block, every forward of a DRConv layer with a guide (``m > 1``) stores
    ``{name: dict(mask=[H, W] int array of the first sample, num_regions=m)}``."""
    from plugin.layers import DRConv2d
    masks: Dict[str, dict] = {}

    def hook(name, num_regions, module, inputs, output):
        masks[name] = dict(mask=output[0].argmax(0).cpu().numpy(), num_regions=num_regions)

    handles = [
        module.guide.register_forward_hook(
            lambda mod, inp, out, name=name, m=module.region_num: hook(name, m, mod, inp, out))
        for name, module in model.named_modules()
        if isinstance(module, DRConv2d) and module.guide is not None
    ]
    try:
        yield masks
    finally:
        for handle in handles:
            handle.remove()


def region_palette(num_regions: int) -> np.ndarray:
    """``[num_regions, 3]`` uint8 RGB colours (matplotlib's tab10/tab20, then hsv)."""
    import matplotlib
    name = 'tab10' if num_regions <= 10 else 'tab20' if num_regions <= 20 else 'hsv'
    cmap = matplotlib.colormaps[name]
    steps = np.arange(num_regions) / (cmap.N if name != 'hsv' else num_regions)
    return (cmap(steps)[:, :3] * 255).round().astype(np.uint8)


def overlay_regions(image: np.ndarray, mask: np.ndarray, num_regions: int, alpha: float = 0.5,
                    content: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """``image`` (``[H, W, 3]`` uint8 RGB) blended with the coloured ``mask`` (``[h, w]`` ints).

    ``content``: the fraction ``(rows, cols)`` of the mask that covers the image (the rest is
    the batch padding at the bottom and right); the mask is cropped to it and resized (nearest)
    to the image size.
    """
    h, w = mask.shape
    if content is not None:
        mask = mask[:max(1, int(np.ceil(content[0] * h))), :max(1, int(np.ceil(content[1] * w)))]
    rows = (np.arange(image.shape[0]) * mask.shape[0] // image.shape[0]).clip(0, mask.shape[0] - 1)
    cols = (np.arange(image.shape[1]) * mask.shape[1] // image.shape[1]).clip(0, mask.shape[1] - 1)
    colours = region_palette(num_regions)[mask[rows][:, cols]]
    return (image * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def draw_region_masks(image: np.ndarray, masks: Dict[str, dict], out_dir: str,
                      alpha: float = 0.5, content: Optional[Tuple[float, float]] = None,
                      cols: int = 4) -> Sequence[str]:
    """One PNG per layer (``{index:02d}_{name}.png``) and ``grid.png`` in ``out_dir``; returns
    the paths written, the grid last. Titles give the layer, the mask size and the regions used."""
    plt = pyplot()

    os.makedirs(out_dir, exist_ok=True)
    paths, overlays = [], []
    for index, (name, item) in enumerate(masks.items()):
        overlay = overlay_regions(image, item['mask'], item['num_regions'], alpha, content)
        used = len(np.unique(item['mask']))
        title = f"{name}  {item['mask'].shape[0]}x{item['mask'].shape[1]}, " \
                f"{used}/{item['num_regions']} regions"
        overlays.append((title, overlay))
        path = osp.join(out_dir, f"{index:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png")
        plt.imsave(path, overlay)
        paths.append(path)
    if not overlays:
        raise ValueError('no DRConv layer with a guide ran: nothing to draw')
    cols = min(cols, len(overlays))
    rows = -(-len(overlays) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows * image.shape[0] /
                                                  image.shape[1] + 0.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (title, overlay) in zip(axes.flat, overlays):
        ax.imshow(overlay)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    grid = osp.join(out_dir, 'grid.png')
    return paths + [save_figure(fig, grid, dpi=100)]
