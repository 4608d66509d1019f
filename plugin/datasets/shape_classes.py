"""Shape-classes: a small ImageNet-format classification set drawn like the occlusion shapes.

The pretraining stage of the CPU path (pretrain a backbone on classification, then start the
occlusion-shapes detector from it) needs an ImageNet stand-in that runs in minutes. Each image is
the occlusion-shapes background (:func:`plugin.datasets.occlusion_shapes._background`), sometimes
with thin clutter lines, and one large shape whose class is the label (radius 30-45% of the side),
at a random position and colour, in half of the images crossed by a thick bar (centred on its
outline half of the time, so it really occludes it). The occluder is no shape of any class: with
small shapes of the other classes as occluders (the first version), every class's outline also
appeared in the images of the others. Smaller shapes (18-38%) with up to three bars stayed at
chance level (about 20% top-1 on six classes) for the tiny classifiers in the CPU budget.
The classes are the detector's three
(:data:`plugin.datasets.occlusion_shapes.CLASSES`, drawn by the same function) and three more
outlines, so the features learnt are not only those that separate three classes.

Layout (mmpretrain's ``CustomDataset`` reads it with ``data_prefix`` and ``ann_file``, as
ImageNet's): ``{out}/{split}/{class}/{index:05d}.png`` and ``{out}/meta/{split}.txt``
(``{class}/{index:05d}.png {label}`` per line). Everything is a function of
``(seed, split, class, index)``.
"""
import math
import os
import os.path as osp
from typing import Dict

import cv2
import numpy as np

from .occlusion_shapes import CLASSES as DETECTION_CLASSES
from .occlusion_shapes import SPLITS, _background, _shape_mask

CLASSES = DETECTION_CLASSES + ('ellipse', 'cross', 'star')
MIN_CONTRAST = 60.0  # L2 distance in RGB between a shape's colour and the background's mean
RADIUS = (0.3, 0.45)  # of the labelled shape, as a fraction of the image side
NUM_OCCLUDERS = 2  # up to NUM_OCCLUDERS - 1 bars


def _polygon(points) -> np.ndarray:
    return np.round(np.asarray(points)).astype(np.int32)


def shape_mask(rng: np.random.Generator, label: int, cx: float, cy: float, radius: float,
               size: int) -> np.ndarray:
    """Full mask (uint8) of one shape of class ``CLASSES[label]`` of about ``radius``."""
    if label < len(DETECTION_CLASSES):
        return _shape_mask(rng, label, cx, cy, radius, size)
    mask = np.zeros((size, size), np.uint8)
    angle = rng.uniform(0, 180)
    if CLASSES[label] == 'ellipse':
        axes = (int(round(radius)), int(round(radius * rng.uniform(0.4, 0.65))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, angle, 0, 360, 1, -1)
    elif CLASSES[label] == 'cross':
        arm = radius * rng.uniform(0.3, 0.45)
        for w, h in ((2 * radius, arm), (arm, 2 * radius)):
            cv2.fillPoly(mask, [_polygon(cv2.boxPoints(((cx, cy), (w, h), angle)))], 1)
    else:  # a five-pointed star
        a0 = math.radians(angle)
        inner = radius * rng.uniform(0.4, 0.5)
        points = [(cx + r * math.cos(a0 + k * math.pi / 5), cy + r * math.sin(a0 + k * math.pi / 5))
                  for k, r in zip(range(10), [radius, inner] * 5)]
        cv2.fillPoly(mask, [_polygon(points)], 1)
    return mask


def _colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background's mean (the shape stays visible)."""
    mean = background.reshape(-1, 3).mean(0)
    while True:
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - mean) >= MIN_CONTRAST:
            return colour


def make_image(seed: int, split: str, label: int, index: int, size: int) -> np.ndarray:
    """One RGB uint8 image whose large shape is of class ``label``."""
    rng = np.random.default_rng([seed, SPLITS.index(split), label, index])
    img = _background(rng, size)
    for _ in range(int(rng.integers(0, 4))):  # clutter: thin lines of random colours
        p0, p1 = rng.uniform(0, size, (2, 2)).astype(int)
        thickness = max(1, int(size * rng.uniform(0.01, 0.03)))
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)),
                 tuple(map(float, rng.uniform(0, 255, 3))), thickness)
    radius = size * rng.uniform(*RADIUS)
    cx, cy = rng.uniform(0.8 * radius, size - 0.8 * radius, 2)
    img[shape_mask(rng, label, cx, cy, radius, size).astype(bool)] = _colour(rng, img)
    for _ in range(int(rng.integers(0, NUM_OCCLUDERS))):  # thick bars, half across the outline
        if rng.random() < 0.5:
            phi = rng.uniform(0, 2 * math.pi)
            centre = np.array([cx + radius * math.cos(phi), cy + radius * math.sin(phi)])
        else:
            centre = rng.uniform(0, size, 2)
        theta = rng.uniform(0, math.pi)
        half = size * rng.uniform(0.15, 0.3) * np.array([math.cos(theta), math.sin(theta)])
        cv2.line(img, tuple(map(int, centre - half)), tuple(map(int, centre + half)),
                 tuple(map(float, rng.uniform(0, 255, 3))),
                 max(2, int(size * rng.uniform(0.05, 0.1))))
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
