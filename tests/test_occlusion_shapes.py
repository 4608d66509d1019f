"""The demo data: deterministic, every occlusion bucket populated, annotations = visible parts."""
import json
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from conftest import ROOT, run_tool
from plugin.datasets.occlusion_shapes import CLASSES, make_dataset, make_image
from plugin.evaluation.occlusion import image_occlusion_ratios
from plugin.evaluation.results_io import load_gt
from plugin.structures.occlusion_ratio import DEFAULT_BUCKETS


def test_every_bucket_gets_images(shapes_data):
    for split in ('train', 'val'):
        coco = load_gt(shapes_data[split])
        ratios = image_occlusion_ratios(coco)
        for lo, hi in DEFAULT_BUCKETS.ranges:
            assert any(lo <= r < hi for r, _ in ratios.values()), (split, lo, hi)
        # the ratio stored with each image is the one the evaluation computes
        for img in coco.dataset['images']:
            assert img['occlusion_ratio'] == round(ratios[img['id']][0], 6)


def test_annotations_describe_visible_parts(shapes_data):
    coco = load_gt(shapes_data['val'])
    root = shapes_data['root']
    for img in coco.dataset['images']:
        seg = cv2.imread(osp.join(root, 'seg', 'val', img['file_name']), cv2.IMREAD_UNCHANGED)
        anns = coco.imgToAnns[img['id']]
        assert len(anns) >= 2
        union = np.zeros_like(seg, dtype=bool)
        for ann in anns:
            m = coco.annToMask(ann).astype(bool)
            assert not (m & union).sum() > 0.02 * m.sum()  # visible parts do not overlap
            union |= m
            # the semantic map labels the annotated visible part with its class
            assert (seg[m] == ann['category_id']).mean() > 0.95
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(m)
            assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
            assert abs(xs.max() + 1 - (x + w)) <= 1 and abs(ys.max() + 1 - (y + h)) <= 1
            assert ann['area'] > 0 and ann['iscrowd'] == 0
        assert set(np.unique(seg)) <= set(range(len(CLASSES) + 1))


def test_deterministic_per_seed():
    a = make_image(5, 'train', 7, 64)
    b = make_image(5, 'train', 7, 64)
    c = make_image(6, 'train', 7, 64)
    assert np.array_equal(a[0], b[0]) and a[3] == b[3]
    assert not np.array_equal(a[0], c[0])


def test_cli_writes_coco_json(tmp_path):
    out = tmp_path / 'd'
    run_tool([osp.join(ROOT, 'tools', 'dataset', 'make_occlusion_shapes.py'), '--out', str(out),
              '--num-train', '5', '--num-val', '5', '--size', '64', '--seed', '1'])
    data = json.loads((out / 'annotations' / 'instances_val.json').read_text())
    assert len(data['images']) == 5
    assert [c['name'] for c in data['categories']] == list(CLASSES)
    ann = data['annotations'][0]
    rle = mask_utils.frPyObjects(ann['segmentation'], 64, 64)
    assert mask_utils.area(mask_utils.merge(rle)) > 0
    assert (out / 'images' / 'train' / '000005.png').exists()


def test_bad_arguments(tmp_path):
    import pytest
    with pytest.raises(ValueError, match='size'):
        make_dataset(str(tmp_path), 1, 1, size=8)
    with pytest.raises(ValueError, match='num_val'):
        make_dataset(str(tmp_path), 1, -1, size=64)
