"""Every conv layer of the plugin trains under DistributedDataParallel with two gloo processes on
CPU: every parameter gets a gradient (DDP without ``find_unused_parameters`` raises on the next
step otherwise), gradients are averaged across ranks, and the replicas stay identical."""
import queue as queue_module
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv.cnn import build_conv_layer
from torch import nn

import plugin  # noqa: F401  (registration)

LAYERS = {
    'TBC': (dict(type='TBC', B=4), dict(padding=1)),
    'TGC': (dict(type='TGC', B=2), dict(padding=1, groups=2)),
    'DRConv': (dict(type='DRConv', region_num=4), dict(padding=1)),
    'DSC': (dict(type='DSC'), dict(stride=2, padding=1)),
    'SK': (dict(type='SK', reduction=4, min_dim=8), dict(padding=1, groups=4)),
}


def make_model(name):
    cfg, kwargs = LAYERS[name]
    torch.manual_seed(0)  # the same initial weights on both ranks
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         build_conv_layer(cfg, 16, 16, 3, **kwargs), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))


def worker(rank, world_size, port, queue):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=world_size)
    try:
        torch.set_num_threads(1)
        for name in LAYERS:
            model = nn.parallel.DistributedDataParallel(make_model(name))
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            gen = torch.Generator().manual_seed(100 + rank)  # different data per rank
            first_grads = None
            for _ in range(3):
                loss = model(torch.randn(2, 3, 16, 16, generator=gen)).square().mean()
                opt.zero_grad()
                loss.backward()
                if first_grads is None:
                    first_grads = [None if p.grad is None else p.grad.numpy().copy()
                                   for p in model.parameters()]
                opt.step()
            queue.put((name, rank, [p.detach().numpy().copy() for p in model.parameters()],
                       first_grads))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def ddp_results():
    """Parameters after 3 DDP steps and the first step's gradients, per layer and rank."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(rank, 2, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = {}
    try:
        while len(results) < 2 * len(LAYERS) and not any(p.exitcode for p in procs):
            try:
                name, rank, params, grads = queue.get(timeout=2)
            except queue_module.Empty:
                continue
            results[name, rank] = ([torch.from_numpy(a) for a in params], grads)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0], 'a DDP worker failed (its traceback is above)'
    return results


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_layer_trains_under_ddp_with_gloo(ddp_results, name):
    (params0, grads0), (params1, grads1) = ddp_results[name, 0], ddp_results[name, 1]
    assert all(g is not None for g in grads0 + grads1)  # every parameter had a gradient
    grads0, grads1 = [torch.from_numpy(g) for g in grads0], [torch.from_numpy(g) for g in grads1]
    for a, b in zip(grads0, grads1):  # all-reduced: the same average on both ranks
        torch.testing.assert_close(a, b)
    for a, b in zip(params0, params1):
        torch.testing.assert_close(a, b)
    # the averaged gradient is that of both ranks' data together (mean of the two local losses)
    model = make_model(name)
    gens = [torch.Generator().manual_seed(100 + rank) for rank in range(2)]
    loss = sum(model(torch.randn(2, 3, 16, 16, generator=g)).square().mean() for g in gens) / 2
    loss.backward()
    for p, g in zip(model.parameters(), grads0):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
