"""Generate the shape-classes ImageNet stand-in (folders per class + mmpretrain meta files).

    python tools/dataset/make_shape_classes.py --out data/shape_classes \
        --num-train 400 --num-val 50 --size 64 --seed 0

Six classes (plugin/datasets/shape_classes.py); the counts are per class.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from make_occlusion_shapes import generate  # noqa: E402  (this folder)
from plugin.datasets.shape_classes import make_dataset  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num-train', type=int, default=400, help='train images per class')
    parser.add_argument('--num-val', type=int, default=50, help='val images per class')
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    generate(parser, make_dataset, argv)


if __name__ == '__main__':
    main()
