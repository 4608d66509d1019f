"""Measurements shared by the benchmarks in this folder: median times of callables that take
turns, and the activation memory autograd keeps for backward. The scripts beside it import it as
``from timing import ...`` (a script's own folder is the first entry of its ``sys.path``)."""
import statistics
import time
from typing import Callable, List, Optional, Sequence

import torch
from torch import nn


def timed_in_turns(fns: Sequence[Callable[[], object]], device: torch.device, repeat: int,
                   warmup: int = 1) -> List[float]:
    """Median milliseconds of one call of each function over ``repeat`` rounds after ``warmup``
    rounds; in every round each function runs once, in turn, so that load from other jobs on a
    shared machine hits them alike. CUDA is synchronised around each call."""
    device = torch.device(device)
    times = [[] for _ in fns]
    for i in range(warmup + repeat):
        for fn, record in zip(fns, times):
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            if i >= warmup:
                record.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def timed_steps(modules: Sequence[nn.Module], inputs, device: torch.device, repeat: int,
                warmup: int = 1, train: bool = True,
                grad: Optional[torch.Tensor] = None) -> List[float]:
    """:func:`timed_in_turns` of one training step (forward, backward of the mean of every output
    summed, or of ``grad`` as the output's gradient, gradients dropped) or one inference forward
    (``no_grad``) of each module, the modules put in train or eval mode accordingly. ``inputs``:
    the modules' one argument (a tensor, or a list of them for a neck)."""
    for m in modules:
        m.train(train)

    def call(module):
        def step():
            if train:
                out = module(inputs)
                if grad is not None:
                    torch.autograd.backward(out, grad)
                else:
                    outs = out if isinstance(out, (tuple, list)) else (out, )
                    sum(o.float().mean() for o in outs).backward()
                module.zero_grad(set_to_none=True)
            else:
                with torch.no_grad():
                    module(inputs)
        return step

    return timed_in_turns([call(m) for m in modules], device, repeat, warmup)


def saved_activation_mb(model: nn.Module, *inputs) -> float:
    """MiB of the tensors autograd keeps for backward in one forward of ``model`` (each storage
    once, parameters left out): the part of training memory that grows with the input."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs)
    return sum(storages.values()) / 2**20
