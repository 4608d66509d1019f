"""Detections that look like a mediocre detector's, for tests and the occlusion benchmark: a
fixture, not part of the plugin."""
from typing import List

import numpy as np
from pycocotools import mask as mask_utils


def synthetic_detections(coco, iou_type: str = 'bbox', seed: int = 0,
                         clutter_per_image: int = 2) -> List[dict]:
    """COCO results that look like a mediocre detector's, for tests and benchmarks.

    Each ground-truth instance is found with probability 0.85 as a jittered box (mislabelled one
    time in ten), and every image gets ``clutter_per_image`` low-scoring false positives. For
    ``'segm'`` the detections carry the RLE of their box instead of a box.
    """
    rng = np.random.default_rng(seed)
    dets = []
    for ann in coco.dataset['annotations']:
        if rng.random() < 0.15:
            continue
        x, y, w, h = ann['bbox']
        box = [x + rng.normal(0, 2), y + rng.normal(0, 2), w * rng.uniform(0.8, 1.2),
               h * rng.uniform(0.8, 1.2)]
        cat = ann['category_id'] if rng.random() < 0.9 else 1 + (ann['category_id'] % 3)
        dets.append(dict(image_id=ann['image_id'], category_id=cat, bbox=box,
                         score=float(rng.uniform(0.3, 1))))
    for img in coco.dataset['images']:
        for _ in range(clutter_per_image):
            side = 0.2 * img['width']
            x, y = rng.uniform(0, img['width'] - side), rng.uniform(0, img['height'] - side)
            dets.append(dict(image_id=img['id'], category_id=int(rng.integers(1, 4)),
                             bbox=[x, y, side, side], score=float(rng.uniform(0, 0.5))))
    if iou_type == 'segm':
        for det in dets:
            img = coco.imgs[det['image_id']]
            x, y, w, h = det.pop('bbox')
            rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]],
                                         img['height'], img['width'])[0]
            det['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
    return dets
