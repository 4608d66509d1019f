"""Generate the occlusion-shapes demo data (COCO instances + semantic label PNGs).

    python tools/dataset/make_occlusion_shapes.py --out data/occlusion_shapes \
        --num-train 240 --num-val 60 --size 256 --seed 0
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.datasets.occlusion_shapes import make_dataset  # noqa: E402


def generate(parser: argparse.ArgumentParser, make_dataset, argv=None) -> None:
    """Parse ``--out --num-train --num-val --size --seed``, write the data set with
    ``make_dataset`` (a progress bar per split); make_shape_classes.py runs it too."""
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--size', type=int, default=256, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    generate(parser, make_dataset, argv)


if __name__ == '__main__':
    main()
