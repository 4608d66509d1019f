"""Parameters and FLOPs (1 multiply-add = 1 FLOP) of the backbone and the whole model of configs.

    python tools/analysis/complexity.py CONFIG [CONFIG or DIR ...] [--shape H W] [--markdown]

A directory stands for every config below it (files under _base_ are skipped). --markdown prints one
table row per config, as the docs' tables are made.
"""
import argparse
import glob
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.analysis import config_complexity  # noqa: E402


def expand(paths):
    for path in paths:
        if osp.isdir(path):
            yield from sorted(p for p in glob.glob(osp.join(path, '**', '*.py'), recursive=True)
                              if '_base_' not in p.split(osp.sep))
        elif osp.isfile(path):
            yield path
        else:
            sys.exit(f'complexity: error: no such config or directory: {path}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='config files or directories')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    parser.add_argument('--markdown', action='store_true', help='one markdown table row each')
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    if args.markdown:
        print('| config | backbone params (M) | backbone GFLOPs | model params (M) | '
              'model GFLOPs | input |')
        print('|---|---:|---:|---:|---:|---|')
    for path in expand(args.configs):
        c = config_complexity(path, shape)
        if args.markdown:
            print(f"| {osp.basename(path)[:-3]} | {c['backbone_params'] / 1e6:.2f} | "
                  f"{c['backbone_flops'] / 1e9:.2f} | {c['model_params'] / 1e6:.2f} | "
                  f"{c['model_flops'] / 1e9:.2f} | {shape[0]}x{shape[1]} |")
        else:
            print(f"{path} @ {shape[0]}x{shape[1]}\n"
                  f"  backbone: {c['backbone_params'] / 1e6:.3f} M params, "
                  f"{c['backbone_flops'] / 1e9:.3f} GFLOPs\n"
                  f"  model:    {c['model_params'] / 1e6:.3f} M params, "
                  f"{c['model_flops'] / 1e9:.3f} GFLOPs\n"
                  f"  not counted (elementwise, pooling, NMS...): {', '.join(c['uncounted'])}")


if __name__ == '__main__':
    main()
