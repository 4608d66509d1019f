"""DRConv (fast and reference paths) against nn.Conv2d of the same shape, in one run.

    python tools/benchmark/bench_drconv.py [--device cpu|cuda] [--regions 2 4 8 16]
        [--batch 2] [--channels 64] [--size 56] [--kernel 3] [--repeat 3] [--threads 1] [--paths]

Prints a markdown table: forward+backward time and inference (no-grad forward) time, medians
with the layers taking turns so that load from other jobs hits them alike, and the peak memory
of a forward+backward step (what the step allocates at its peak beyond what existed before it:
torch.cuda.max_memory_allocated on CUDA, the profiler's memory events on CPU); each also as a
ratio to nn.Conv2d measured in the same run. With --paths the fast layer is also timed on each of
its two exact paths (factorised, unfolded), whichever DRConv2d.factorise would choose.
"""
import argparse
import json
import os.path as osp
import sys
import tempfile

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from timing import timed_steps  # noqa: E402


def build(variant, args, regions):
    from plugin.layers import DRConv2d
    conv = dict(kernel_size=args.kernel, padding=args.kernel // 2, stride=args.stride)
    if variant == 'conv':
        return torch.nn.Conv2d(args.channels, args.channels, bias=False, **conv)
    if variant in ('factorised', 'unfolded'):  # the fast layer held on one path
        layer = DRConv2d(args.channels, args.channels, region_num=regions, **conv)
        layer.factorise = lambda positions, training: variant == 'factorised'
        return layer
    return DRConv2d(args.channels, args.channels, region_num=regions, impl=variant, **conv)


def measure_times(modules, x, device, repeat):
    """Median milliseconds of a training step and of an inference forward of each module."""
    return {kind: dict(zip(modules, timed_steps(list(modules.values()), x, device, repeat,
                                                train=train)))
            for kind, train in (('train', True), ('infer', False))}


def measure_memory(module, x, device):
    """Peak bytes allocated during one forward+backward step, beyond what existed before it."""
    module(x).sum().backward()  # the grads exist from here on
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        module(x).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    # CPU: the allocator's running total, from the profiler's memory events
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        module(x).sum().backward()
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(osp.join(tmp, 'trace.json'))
        with open(osp.join(tmp, 'trace.json')) as f:
            events = [e['args'] for e in json.load(f)['traceEvents']
                      if e.get('name') == '[memory]' and e['args'].get('Device Type') == 0]
    totals = [e['Total Allocated'] for e in events]
    return max(totals) - (totals[0] - events[0]['Bytes'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--regions', type=int, nargs='+', default=[2, 4, 8, 16])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=56)
    parser.add_argument('--kernel', type=int, default=3)
    parser.add_argument('--stride', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1, help='CPU threads (shared machines: 1)')
    parser.add_argument('--paths', action='store_true',
                        help='also time the fast layer on each path: factorised, unfolded')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU, {args.threads} thread(s)'
    print(f'DRConv vs nn.Conv2d: x = [{args.batch}, {args.channels}, {args.size}, {args.size}], '
          f'{args.kernel}x{args.kernel}, stride {args.stride}, {args.channels} outputs, fp32, '
          f'{name}, median of {args.repeat}\n')

    x = torch.randn(args.batch, args.channels, args.size, args.size, device=device,
                    requires_grad=True)
    modules = {('conv', 0): build('conv', args, 0).to(device)}
    for regions in args.regions:
        for variant in ('fast', 'reference') + (('factorised', 'unfolded') if args.paths else ()):
            modules[(variant, regions)] = build(variant, args, regions).to(device)
    times = measure_times(modules, x, device, args.repeat)
    memory = {key: measure_memory(module, x, device) for key, module in modules.items()}

    base = ('conv', 0)
    print('| layer | m | fwd+bwd (ms) | x Conv2d | inference (ms) | x Conv2d | '
          'peak step memory (MB) | x Conv2d |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for key in modules:
        variant, regions = key
        layer = 'nn.Conv2d' if variant == 'conv' else f'DRConv {variant}'
        train, infer, mem = times['train'][key], times['infer'][key], memory[key]
        print(f"| {layer} | {regions or '-'} | {train:.1f} | {train / times['train'][base]:.2f} | "
              f"{infer:.1f} | {infer / times['infer'][base]:.2f} | {mem / 2**20:.1f} | "
              f"{mem / max(memory[base], 1):.2f} |")


if __name__ == '__main__':
    main()
