"""Measurements shared by the benchmarks in ``tools/benchmark/``: median times of callables that
take turns, and the activation memory autograd keeps for backward."""
import statistics
import time
from typing import Callable, List, Sequence

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


def timed_steps(modules: Sequence[nn.Module], inputs: torch.Tensor, device: torch.device,
                repeat: int, warmup: int = 1, train: bool = True) -> List[float]:
    """:func:`timed_in_turns` of one training step (forward, the mean of every output summed,
    backward, gradients dropped) or one inference forward (``no_grad``) of each module, the
    modules put in train or eval mode accordingly."""
    for m in modules:
        m.train(train)

    def call(module):
        def step():
            if train:
                out = module(inputs)
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
