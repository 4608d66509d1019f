"""What every layer does with its input before computing: check its shape, and answer an empty
batch (a RoI head without proposals, a filtered batch) with an empty output."""
from typing import Iterable, Optional, Sequence

import torch
from torch import Tensor


def check_input(layer: str, x: Tensor, channels: int, name: str = 'in_channels') -> None:
    """Raise a ``ValueError`` naming ``layer`` and its argument ``name`` unless ``x`` is
    ``[N, channels, H, W]``. Shapes only: no device sync."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f'{layer}: expected an input [N, {name}={channels}, H, W], '
                         f'got shape {list(x.shape)}')


def empty_output(x: Tensor, shape: Sequence[int],
                 sources: Iterable[Optional[Tensor]] = ()) -> Tensor:
    """Zeros of ``shape`` (a batch of 0) on ``x``'s device, in the autocast dtype when autocast is
    on (else ``x``'s), that backpropagate: ``x`` and every tensor of ``sources`` that requires
    grad (a layer's parameters) get a zero gradient, so DDP sees every parameter used."""
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    out = x.new_zeros(shape, dtype=dtype)
    if torch.is_grad_enabled():
        used = [t.sum() for t in (x, *sources) if t is not None and t.requires_grad]
        if used:
            out = out + (sum(used) * 0).to(dtype)
    return out
