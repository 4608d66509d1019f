"""Generate the shape-classes ImageNet stand-in (folders per class + mmpretrain meta files).

    python tools/dataset/make_shape_classes.py --out data/shape_classes \
        --num-train 100 --num-val 30 --size 64 --seed 0
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.datasets.shape_classes import make_dataset  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num-train', type=int, default=100, help='train images per class')
    parser.add_argument('--num-val', type=int, default=30, help='val images per class')
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    from rich.progress import Progress
    with Progress(transient=True) as progress:
        tasks = {}

        def step(split, done, total):
            if split not in tasks:
                tasks[split] = progress.add_task(f'{split} images', total=total)
            progress.update(tasks[split], completed=done)

        try:
            paths = make_dataset(args.out, args.num_train, args.num_val, args.size, args.seed,
                                 progress=step)
        except ValueError as e:
            parser.error(str(e))
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
