"""One table of every family's speed against its baseline, all measured in the same run.

    python tools/benchmark/run_all.py [--device cuda] [--repeat 5] [--size 224] [--out FILE.md]

Each row times a module of the plugin and the module it replaces (``nn.Conv2d``, a grouped conv,
mmdet's ResNet-50 or ResNeXt-50) in turns, for a training step (forward + backward) and an
inference forward, and reports the ratio. The families' own benchmarks (``bench_tbc.py``,
``bench_drconv.py``, ``bench_dsc.py``, ``bench_sk.py``) go further (sweeps, memory, paths);
``bench_onnx.py`` times the same backbones and one detector per family exported to onnxruntime.
"""
import argparse
import os.path as osp
import platform
import sys
from typing import Callable, List, Tuple

import torch
from mmdet.models.backbones import ResNet, ResNeXt
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.backbones import DRResNet, DSCResNet, SKNet, TiedResNet  # noqa: E402
from plugin.layers import (DRConv2d, DynamicStrideConv2d, SKConv2d,  # noqa: E402
                           TiedBlockConv2d)
from timing import timed_steps  # noqa: E402

Builder = Callable[[], nn.Module]


def trained_like(module: nn.Module) -> nn.Module:
    """DSC offsets start at zero (the plain conv); give them trained-like values."""
    for m in module.modules():
        if isinstance(m, DynamicStrideConv2d):
            nn.init.normal_(m.conv_offset.weight, std=0.01)
    return module


def grouped_conv_bn_relu(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(c),
                         nn.ReLU(inplace=True))


def cases(args) -> List[Tuple[str, str, Builder, Builder, Tuple[int, ...]]]:
    """(what, baseline, build ours, build baseline, input shape) per row."""
    n, s = args.batch, args.size
    conv = dict(kernel_size=3, padding=1, bias=False)
    return [
        ('TBC 3x3 256->256, B=4', 'nn.Conv2d', lambda: TiedBlockConv2d(256, 256, B=4, **conv),
         lambda: nn.Conv2d(256, 256, **conv), (n, 256, s // 8, s // 8)),
        ('DRConv 3x3 64->64, m=8', 'nn.Conv2d', lambda: DRConv2d(64, 64, 3, padding=1),
         lambda: nn.Conv2d(64, 64, **conv), (n, 64, s // 4, s // 4)),
        ('DRConv 3x3 256->256, m=8', 'nn.Conv2d', lambda: DRConv2d(256, 256, 3, padding=1),
         lambda: nn.Conv2d(256, 256, **conv), (n, 256, s // 8, s // 8)),
        ('DSC 3x3 256->256, stride 2', 'nn.Conv2d stride 2',
         lambda: trained_like(DynamicStrideConv2d(256, 256, 3, 2, 1, bias=False)),
         lambda: nn.Conv2d(256, 256, stride=2, **conv), (n, 256, s // 8, s // 8)),
        ('SK conv 256->256, 2 branches, 32 groups', 'grouped 3x3 conv + BN + ReLU',
         lambda: SKConv2d(256, 256), lambda: grouped_conv_bn_relu(256), (n, 256, s // 8, s // 8)),
        ('TiedResNet50', 'ResNet-50', lambda: TiedResNet(50), lambda: ResNet(50), (n, 3, s, s)),
        ('TiedResNet50-S', 'ResNet-50', lambda: TiedResNet(50, arch='S'), lambda: ResNet(50),
         (n, 3, s, s)),
        ('DR-ResNet-50 (stages 2-4, m=8)', 'ResNet-50', lambda: DRResNet(50), lambda: ResNet(50),
         (n, 3, s, s)),
        ('DSC-ResNet-50 (stages 2-4)', 'ResNet-50', lambda: trained_like(DSCResNet(50)),
         lambda: ResNet(50), (n, 3, s, s)),
        ('SKNet-50', 'ResNeXt-50 32x4d', lambda: SKNet(50),
         lambda: ResNeXt(depth=50, groups=32, base_width=4), (n, 3, s, s)),
    ]


def measure(ours: nn.Module, base: nn.Module, x: torch.Tensor, args) -> List[float]:
    """Milliseconds: train ours, train baseline, infer ours, infer baseline (in turns)."""
    return [t for train in (True, False)
            for t in timed_steps([ours, base], x, args.device, args.repeat, args.warmup, train)]


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=224, help='image size; layers get 1/4, 1/8')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--only', nargs='+', help='rows whose name contains one of these')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else (
        f'CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads')
    lines = [f'Benchmarks, {where}, torch {torch.__version__}, batch {args.batch}, image '
             f'{args.size}px (layers at 1/4 or 1/8 of it), median of {args.repeat}; x = ours / '
             'baseline, both timed in turns in this run.', '',
             '| module | baseline | input | train ms | baseline ms | train x | infer ms | '
             'baseline ms | infer x |', '|---|---|---|---:|---:|---:|---:|---:|---:|']
    for name, base_name, build, build_base, shape in cases(args):
        if args.only and not any(key in name for key in args.only):
            continue
        torch.manual_seed(0)
        ours, base = build().to(device), build_base().to(device)
        x = torch.randn(*shape, device=device)
        t, tb, i, ib = measure(ours, base, x, args)
        lines.append(f'| {name} | {base_name} | {"x".join(map(str, shape))} | {t:.1f} | '
                     f'{tb:.1f} | **{t / tb:.2f}** | {i:.1f} | {ib:.1f} | **{i / ib:.2f}** |')
        print(lines[-1] if len(lines) > 5 else '\n'.join(lines), flush=True)
    table = '\n'.join(lines) + '\n'
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    return table


if __name__ == '__main__':
    main()
