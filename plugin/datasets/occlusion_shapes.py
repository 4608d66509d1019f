"""Occlusion-shapes: a small COCO-format data set whose images cover every occlusion bucket.

Each image is a textured background with a few filled shapes drawn one after the other, so later
shapes really hide earlier ones. Annotations describe what is *visible*: the polygon mask of the
visible part, its tight box and pixel area, as COCO annotates. Image ``i`` of a split aims at
occlusion bucket ``i mod len(buckets)`` (see :mod:`plugin.structures.occlusion_ratio`): layouts
are drawn until the image's occlusion ratio falls in that bucket and every shape keeps a visible
part, so all buckets get images. Everything is a function of ``(seed, split, index)``.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..structures.occlusion_ratio import DEFAULT_BINS, box_occlusion_ratio, parse_bins

CLASSES = ('circle', 'rectangle', 'triangle')
SPLITS = ('train', 'val')
MIN_VISIBLE_FRACTION = 0.2  # of a shape's own area
MIN_VISIBLE_PIXELS = 40  # at 256x256, scaled with the image area
MAX_TRIES = 400


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth two-colour gradient with mild noise (uint8 RGB)."""
    c0, c1 = rng.uniform(40, 215, (2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None] + rng.normal(0, 6, (size, size, 3))
    return img.clip(0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, label: int, cx: float, cy: float, radius: float,
                size: int) -> np.ndarray:
    """Full (amodal) mask of one shape of class ``label`` centred at (cx, cy)."""
    mask = np.zeros((size, size), np.uint8)
    if CLASSES[label] == 'circle':
        cv2.circle(mask, (int(cx), int(cy)), int(radius), 1, -1)
    elif CLASSES[label] == 'rectangle':
        w, h = radius * rng.uniform(1.2, 2.0), radius * rng.uniform(1.2, 2.0)
        pts = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 90)))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        a0 = rng.uniform(0, 2 * math.pi / 3)
        pts = [(cx + radius * math.cos(a0 + k * 2 * math.pi / 3),
                cy + radius * math.sin(a0 + k * 2 * math.pi / 3)) for k in range(3)]
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def _layout(rng: np.random.Generator, size: int, bucket: int, num_buckets: int) -> List[dict]:
    """Random shapes; higher buckets cluster more shapes more tightly."""
    tightness = bucket / max(num_buckets - 1, 1)
    num = int(rng.integers(2 + round(2 * tightness), 5 + round(4 * tightness)))
    spread = size * (0.45 - 0.38 * tightness)
    centre = rng.uniform(0.35 * size, 0.65 * size, 2)
    shapes = []
    for _ in range(num):
        radius = size * rng.uniform(0.08, 0.17) * (1 + 0.3 * tightness)
        cx, cy = (centre + rng.uniform(-spread, spread, 2)).clip(radius, size - radius)
        label = int(rng.integers(len(CLASSES)))
        shapes.append(dict(label=label, mask=_shape_mask(rng, label, cx, cy, radius, size),
                           colour=rng.uniform(0, 255, 3)))
    return shapes


def _polygons(visible: np.ndarray) -> List[List[float]]:
    """Outer contours of a visible mask; empty if the mask has a hole (COCO polygons have none)."""
    contours, hierarchy = cv2.findContours(visible.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None or (hierarchy[0, :, 3] >= 0).any():
        return []
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _visible_instances(shapes: List[dict]):
    """Visible parts (later shapes on top) as COCO annotations; None if a shape is (nearly)
    hidden or its visible part has a hole. Box and area are those of the polygons, as in COCO."""
    size = shapes[0]['mask'].shape[0]
    covered = np.zeros((size, size), bool)
    instances = []
    for shape in reversed(shapes):
        full = shape['mask'].astype(bool)
        visible = full & ~covered
        covered |= full
        polygons = _polygons(visible)
        if not polygons:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, size, size))
        area = int(mask_utils.area(rle))
        min_pixels = max(8.0, MIN_VISIBLE_PIXELS * (size / 256) ** 2)
        if area < max(min_pixels, MIN_VISIBLE_FRACTION * full.sum()):
            return None
        instances.append(dict(label=shape['label'], mask=mask_utils.decode(rle).astype(bool),
                              polygons=polygons,
                              bbox=[float(v) for v in mask_utils.toBbox(rle)], area=area))
    return instances[::-1]


def make_image(seed: int, split: str, index: int, size: int,
               bins: Sequence[float] = DEFAULT_BINS):
    """One image: ``(rgb uint8 HxWx3, semantic label map uint8 HxW, instances, r)``."""
    ranges = parse_bins(bins).ranges
    bucket = index % len(ranges)
    lo, hi = ranges[bucket]
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    best = None
    for attempt in range(2 * MAX_TRIES):
        # after MAX_TRIES without any valid layout, fall back to the sparse layouts of bucket 0
        shapes = _layout(rng, size, bucket if attempt < MAX_TRIES else 0, len(ranges))
        instances = _visible_instances(shapes)
        if instances is None:
            continue
        r = box_occlusion_ratio(np.array([i['bbox'] for i in instances]))
        miss = max(lo - r, r - hi, 0.0)
        if best is None or miss < best[0]:
            best = (miss, shapes, instances, r)
        if lo <= r < hi or (best is not None and attempt >= MAX_TRIES):
            break
    if best is None:
        raise RuntimeError(f'no valid layout for image {index} of {split} (seed {seed}) '
                           f'in {2 * MAX_TRIES} tries')
    _, shapes, instances, r = best
    img = _background(rng, size)
    for shape in shapes:
        img[shape['mask'].astype(bool)] = shape['colour'].astype(np.uint8)
    semantic = np.zeros((size, size), np.uint8)
    for inst in instances:
        semantic[inst['mask']] = inst['label'] + 1  # the annotated (polygon) visible parts
    return img, semantic, instances, r


def make_dataset(out_dir: str, num_train: int, num_val: int, size: int = 256, seed: int = 0,
                 bins: Sequence[float] = DEFAULT_BINS, progress=None) -> Dict[str, str]:
    """Write images, COCO instance json and semantic label PNGs; return the json paths.

    Layout: ``{out}/images/{split}/{id:06d}.png``, ``{out}/annotations/instances_{split}.json``,
    ``{out}/seg/{split}/{id:06d}.png`` (0 = background, k = ``CLASSES[k-1]``). ``progress`` is
    called with ``(split, index, total)`` after each image.
    """
    if size < 32:
        raise ValueError(f'size must be at least 32 pixels, got {size}')
    for name, num in (('num_train', num_train), ('num_val', num_val)):
        if num < 0:
            raise ValueError(f'{name} must be >= 0, got {num}')
    categories = [dict(id=k + 1, name=c, supercategory='shape') for k, c in enumerate(CLASSES)]
    paths = {}
    for split, num in zip(SPLITS, (num_train, num_val)):
        for sub in ('images', 'seg'):
            os.makedirs(osp.join(out_dir, sub, split), exist_ok=True)
        images, annotations = [], []
        for index in range(num):
            img_id = index + 1
            img, semantic, instances, r = make_image(seed, split, index, size, bins)
            name = f'{img_id:06d}.png'
            cv2.imwrite(osp.join(out_dir, 'images', split, name), img[..., ::-1])
            cv2.imwrite(osp.join(out_dir, 'seg', split, name), semantic)
            images.append(dict(id=img_id, file_name=name, width=size, height=size,
                               occlusion_ratio=round(r, 6)))
            for inst in instances:
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id, category_id=inst['label'] + 1,
                    bbox=inst['bbox'], area=inst['area'], iscrowd=0,
                    segmentation=inst['polygons']))
            if progress is not None:
                progress(split, index + 1, num)
        os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
        paths[split] = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(paths[split], 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return paths
