"""Pairwise cosine similarity of a layer's filters, per layer, as histograms (TBC paper, Fig. 9).

"Tied Block Convolution", Wang & Yu, AAAI 2021 (https://arxiv.org/abs/2009.12021), Figs. 1 and 9:
as channels grow with depth, the filters of a standard CNN become correlated; TBC's shared thinner
filters are less so. Two views of "filter" are measured:

* ``weights``: every output filter of the layer's (k > 1) convolutions, flattened; for a TBC layer
  these are its ``c_o / B`` shared thin filters.
* ``guided``: the guided back-propagation pattern (Springenberg et al., 2015) of each output
  channel of the layer, i.e. the gradient of the channel's mean response w.r.t. the input image,
  with every ``nn.ReLU`` passing only positive gradients, averaged over a set of images.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

from .figures import pyplot, save_figure


def pairwise_cosine(filters: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pair ``i < j`` of the rows of ``filters`` ``[F, D]``."""
    unit = nn.functional.normalize(filters.flatten(1).double(), dim=1)
    sim = unit @ unit.t()
    i, j = torch.triu_indices(len(unit), len(unit), offset=1)
    return sim[i, j].float()


def weight_similarities(layer: nn.Module) -> torch.Tensor:
    """Pairwise cosine similarities of the filters of each spatial (k > 1) conv in ``layer``
    (of all its convs if it has no spatial one), concatenated over the convs."""
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    spatial = [m for m in convs if m.kernel_size != (1, 1)]
    if not convs:
        raise ValueError(f'{type(layer).__name__} has no Conv2d')
    return torch.cat([pairwise_cosine(m.weight.detach()) for m in spatial or convs])


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Make every ``nn.ReLU`` of ``model`` pass only positive gradients (guided backprop)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    inplace = [m.inplace for m in relus]
    handles = []
    for m in relus:
        m.inplace = False  # backward hooks do not allow in-place outputs
        handles.append(m.register_full_backward_hook(
            lambda _, grad_in, grad_out: (grad_in[0].clamp(min=0), )))
    try:
        yield
    finally:
        for m, flag, handle in zip(relus, inplace, handles):
            m.inplace = flag
            handle.remove()


def guided_backprop_patterns(model: nn.Module, layer: nn.Module, images: torch.Tensor,
                             max_filters: Optional[int] = 64, seed: int = 0) -> torch.Tensor:
    """``[F, 3 * H * W]``: per output channel of ``layer`` (``max_filters`` of them, drawn with
    ``seed``), the guided-backprop gradient of its mean response, averaged over ``images``."""
    responses = []
    handle = layer.register_forward_hook(lambda _, __, out: responses.append(out))
    was_training = model.training
    model.eval()
    try:
        with guided_relus(model):
            x = images.detach().clone().requires_grad_()
            model(x)
            out = responses[-1]
            channels = torch.arange(out.shape[1])
            if max_filters and out.shape[1] > max_filters:
                gen = torch.Generator().manual_seed(seed)
                channels = channels[torch.randperm(out.shape[1], generator=gen)[:max_filters]]
            patterns = []
            for c in channels.tolist():
                (grad, ) = torch.autograd.grad(out[:, c].mean(), x, retain_graph=True)
                patterns.append(grad.mean(0).flatten())
    finally:
        handle.remove()
        model.train(was_training)
    return torch.stack(patterns)


def default_layers(backbone: nn.Module) -> List[str]:
    """The 3x3 stage (``conv2``) of the last block of each ``layer{i}`` of a ResNet-like
    backbone (mmdet ResNet/ResNeXt/ResNeSt, TiedResNet, ...)."""
    names = []
    for i in range(1, 5):
        stage = getattr(backbone, f'layer{i}', None)
        if stage is not None and hasattr(stage[-1], 'conv2'):
            names.append(f'layer{i}.{len(stage) - 1}.conv2')
    if not names:
        raise ValueError(f'{type(backbone).__name__}: no layer{{i}} stages; pass layer names')
    return names


def plot_similarity_histograms(results: Dict[str, Dict[str, torch.Tensor]], out_file: str,
                               bins: int = 40, title: Optional[str] = None,
                               layer_titles: Optional[Sequence[str]] = None) -> str:
    """One panel per layer index, one density histogram per model in it.

    ``results`` maps a model name to ``{layer name: similarities}`` (the same number of layers per
    model; panel ``i`` shows every model's ``i``-th layer). Returns ``out_file``.
    """
    plt = pyplot()

    per_model = {name: list(layers.items()) for name, layers in results.items()}
    num = len(next(iter(per_model.values())))
    fig, axes = plt.subplots(1, num, figsize=(3.4 * num, 3.0), dpi=120, squeeze=False)
    for i, ax in enumerate(axes[0]):
        for name, layers in per_model.items():
            layer, sims = layers[i]
            sims = sims.numpy()
            ax.hist(sims, bins=bins, range=(-1, 1), density=True, histtype='step', lw=1.5,
                    label=f'{name} (mean {sims.mean():.2f})')
        ax.set_title(layer_titles[i] if layer_titles else f'layer {i + 1}', fontsize=9)
        ax.set_xlabel('pairwise cosine similarity', fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_file)
