"""The Gaussian smoothing of the DSC maps: the allocation loss's target and the drawn densities."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(maps: Tensor, sigma: float) -> Tensor:
    """``maps`` (N, 1, H, W) blurred by a Gaussian of standard deviation ``sigma`` pixels.

    Two 1-D passes with the kernel cut at ``max(1, ceil(3 sigma))`` pixels either side and
    normalised to sum 1; the borders are replicated, so a constant map stays constant.
    """
    radius = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, device=maps.device) / sigma)**2)
    k = k / k.sum()
    maps = F.conv2d(F.pad(maps, (radius, radius, 0, 0), mode='replicate'), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(maps, (0, 0, radius, radius), mode='replicate'), k.view(1, 1, -1, 1))
