"""Speed of Tied Block Convolution (TBC paper, Fig. 3) and of TiedResNet50(-S) vs ResNet-50.

    python tools/benchmark/bench_tbc.py [--device cuda] [--repeat 5] [--channels 256] [--size 28]

Prints markdown tables of median milliseconds and their ratio (x) to the baseline row measured in
the same run:

1. a 3x3 conv layer (``--channels`` in and out, ``--batch`` x ``--size``^2 input), forward +
   backward: ``nn.Conv2d`` (the baseline) vs grouped ``nn.Conv2d`` with ``groups = g`` vs
   ``TiedBlockConv2d`` with ``B = g``, for ``g = 1 ... 32``; grouped conv and TBC have the same
   FLOPs (1/g of the baseline) and output shape;
2. backbones: mmdet ResNet-50 (the baseline), TiedResNet50 and TiedResNet50-S, inference forward
   and training step at ``--batch`` x 224^2, and inference forward at 1 x 800x1333.

Modules of a group are timed in turns (one call each per round), so a busy machine slows them alike.
"""
import argparse
import os.path as osp
import sys

import torch
from mmdet.models.backbones import ResNet
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.backbones import TiedResNet  # noqa: E402
from plugin.layers import TiedBlockConv2d  # noqa: E402
from timing import timed_steps  # noqa: E402


def conv_table(args, device):
    c, x = args.channels, torch.randn(args.batch, args.channels, args.size, args.size,
                                      device=device)
    rows = ['| g = groups = B | Conv2d (ms) | grouped Conv2d (ms) | x | TBC (ms) | x |',
            '|---:|---:|---:|---:|---:|---:|']
    for g in (1, 2, 4, 8, 16, 32):
        modules = [nn.Conv2d(c, c, 3, padding=1, bias=False),
                   nn.Conv2d(c, c, 3, padding=1, groups=g, bias=False),
                   TiedBlockConv2d(c, c, 3, padding=1, bias=False, B=g)]
        modules = [m.to(device) for m in modules]
        base, group, tbc = timed_steps(modules, x, device, args.repeat, args.warmup, True)
        rows.append(f'| {g} | {base:.2f} | {group:.2f} | {group / base:.2f} | {tbc:.2f} | '
                    f'{tbc / base:.2f} |')
    return rows


def backbone_table(args, device):
    builders = [('ResNet-50 (mmdet)', lambda: ResNet(50)),
                ('TiedResNet50', lambda: TiedResNet(50)),
                ('TiedResNet50-S', lambda: TiedResNet(50, arch='S'))]
    names = [name for name, _ in builders]
    modules = [build().to(device) for _, build in builders]
    cases = [(f'{args.batch}x224x224 forward', (args.batch, 224, 224), False),
             (f'{args.batch}x224x224 train step', (args.batch, 224, 224), True),
             ('1x800x1333 forward', (1, 800, 1333), False)]
    if args.large_train:
        cases.append(('1x800x1333 train step', (1, 800, 1333), True))
    rows = ['| input | ' + ' | '.join(f'{n} (ms) | x' for n in names) + ' |',
            '|---|' + '---:|---:|' * len(names)]
    for label, (n, h, w), train in cases:
        x = torch.randn(n, 3, h, w, device=device)
        repeat = args.repeat if n > 1 or device.type == 'cuda' else max(2, args.repeat // 2)
        times = timed_steps(modules, x, device, repeat, args.warmup, train)
        rows.append(f'| {label} | ' + ' | '.join(f'{t:.1f} | {t / times[0]:.2f}' for t in times)
                    + ' |')
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--size', type=int, default=28, help='conv-layer input size')
    parser.add_argument('--large-train', action='store_true',
                        help='also time a training step at 800x1333')
    parser.add_argument('--skip', choices=['conv', 'backbone'], help='leave one table out')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'# bench_tbc: torch {torch.__version__}, {name}, repeat {args.repeat} (median)\n')
    if args.skip != 'conv':
        print(f'## 3x3 conv, {args.channels} -> {args.channels} channels, '
              f'{args.batch}x{args.size}x{args.size}, forward + backward (paper Fig. 3)\n')
        print('\n'.join(conv_table(args, device)) + '\n')
    if args.skip != 'backbone':
        print('## backbones (x: ratio to ResNet-50)\n')
        print('\n'.join(backbone_table(args, device)))


if __name__ == '__main__':
    main()
