"""Run by tests/test_ddp_layers.py in its own process group: every conv layer of the plugin trains
3 steps under DistributedDataParallel in 2 gloo processes; each rank saves its first-step
gradients and final parameters to OUT/rank{r}.pt.

    python tests/ddp_layers_worker.py OUT
"""
import datetime
import os.path as osp
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv.cnn import build_conv_layer
from torch import nn

LAYERS = {
    'TBC': (dict(type='TBC', B=4), dict(padding=1)),
    'TGC': (dict(type='TGC', B=2), dict(padding=1, groups=2)),
    'DRConv': (dict(type='DRConv', region_num=4), dict(padding=1)),
    'DSC': (dict(type='DSC'), dict(stride=2, padding=1)),
    'SK': (dict(type='SK', reduction=4, min_dim=8), dict(padding=1, groups=4)),
}
STEPS = 3


def make_model(name: str) -> nn.Module:
    import plugin  # noqa: F401  (registration)
    cfg, kwargs = LAYERS[name]
    torch.manual_seed(0)  # the same initial weights on both ranks
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         build_conv_layer(cfg, 16, 16, 3, **kwargs), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))


def batch(rank: int, step: int) -> torch.Tensor:
    """Different data per rank and step, reproducible in the test."""
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(100 * step + rank))


def worker(rank: int, world_size: int, out: str) -> None:
    # a file rendezvous (no port to race for) and a deadline on every collective
    dist.init_process_group('gloo', init_method=f'file://{osp.join(out, "rendezvous")}',
                            rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=60))
    torch.set_num_threads(1)
    results = {}
    for name in LAYERS:
        model = nn.parallel.DistributedDataParallel(make_model(name))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        first_grads = None
        for step in range(STEPS):
            loss = model(batch(rank, step)).square().mean()
            opt.zero_grad()
            loss.backward()
            if first_grads is None:
                first_grads = [None if p.grad is None else p.grad.clone()
                               for p in model.parameters()]
            opt.step()
        results[name] = ([p.detach().clone() for p in model.parameters()], first_grads)
    torch.save(results, osp.join(out, f'rank{rank}.pt'))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    mp.spawn(worker, args=(2, sys.argv[1]), nprocs=2, join=True)
