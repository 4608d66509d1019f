"""Shape-classes: a small ImageNet-format classification set drawn like the occlusion shapes.

The pretraining stage of the CPU path (pretrain a backbone on classification, then start the
occlusion-shapes detector from it) needs an ImageNet stand-in that runs in minutes. Each image is
the occlusion-shapes background (:func:`plugin.datasets.occlusion_shapes._background`) with one
large shape whose class is the label, partly covered by up to two small shapes of other classes, so
the classifier learns the shapes' outlines under occlusion, as the detector later must.

Layout (mmpretrain's ``CustomDataset`` reads it with ``data_prefix`` and no annotation file, as
ImageNet's folder layout): ``{out}/{split}/{class}/{index:05d}.png`` and
``{out}/meta/{split}.txt`` (``{class}/{index:05d}.png {label}`` per line, mmpretrain's
annotation-file format). Everything is a function of ``(seed, split, class, index)``.
"""
import os
import os.path as osp
from typing import Dict

import cv2
import numpy as np

from .occlusion_shapes import CLASSES, SPLITS, _background, _shape_mask


def make_image(seed: int, split: str, label: int, index: int, size: int) -> np.ndarray:
    """One RGB uint8 image whose large shape is of class ``label``."""
    rng = np.random.default_rng([seed, SPLITS.index(split), label, index])
    img = _background(rng, size)
    radius = size * rng.uniform(0.22, 0.34)
    cx, cy = rng.uniform(radius, size - radius, 2)
    img[_shape_mask(rng, label, cx, cy, radius, size).astype(bool)] = rng.uniform(0, 255, 3)
    others = [k for k in range(len(CLASSES)) if k != label]
    for _ in range(int(rng.integers(0, 3))):
        small = size * rng.uniform(0.06, 0.11)
        ox, oy = rng.uniform(small, size - small, 2)
        mask = _shape_mask(rng, int(rng.choice(others)), ox, oy, small, size)
        img[mask.astype(bool)] = rng.uniform(0, 255, 3)
    return img


def make_dataset(out_dir: str, num_train: int, num_val: int, size: int = 64, seed: int = 0,
                 progress=None) -> Dict[str, str]:
    """Write ``num_train`` / ``num_val`` images *per class*; return the annotation files.

    ``progress`` is called with ``(split, done, total)`` after each image.
    """
    if size < 32:
        raise ValueError(f'size must be at least 32 pixels, got {size}')
    for name, num in (('num_train', num_train), ('num_val', num_val)):
        if num < 1:
            raise ValueError(f'{name} must be >= 1 (images per class), got {num}')
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    paths = {}
    for split, num in zip(SPLITS, (num_train, num_val)):
        lines = []
        total = num * len(CLASSES)
        for label, name in enumerate(CLASSES):
            os.makedirs(osp.join(out_dir, split, name), exist_ok=True)
            for index in range(num):
                rel = f'{name}/{index:05d}.png'
                img = make_image(seed, split, label, index, size)
                cv2.imwrite(osp.join(out_dir, split, rel), img[..., ::-1])
                lines.append(f'{rel} {label}')
                if progress is not None:
                    progress(split, len(lines), total)
        paths[split] = osp.join(out_dir, 'meta', f'{split}.txt')
        with open(paths[split], 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return paths
