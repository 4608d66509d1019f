"""Occlusion ratio r = Σ_{i<j} |b_i ∩ b_j| / Σ_i |b_i| on hand-made images."""
import math
import re

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from plugin.evaluation.occlusion import image_occlusion_ratios
from plugin.structures.occlusion_ratio import (OcclusionEvalError, box_occlusion_ratio,
                                               bucket_name, mask_occlusion_ratio, parse_bins)


def make_coco(images):
    """images: {img_id: [(x, y, w, h, iscrowd), ...]} -> COCO with square masks = boxes."""
    anns, k = [], 0
    for img_id, boxes in images.items():
        for x, y, w, h, crowd in boxes:
            k += 1
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            anns.append(dict(id=k, image_id=img_id, category_id=1, bbox=[x, y, w, h],
                             area=w * h, iscrowd=crowd, segmentation=[poly]))
    coco = COCO()
    coco.dataset = dict(images=[dict(id=i, width=100, height=100) for i in images],
                        annotations=anns, categories=[dict(id=1, name='a')])
    coco.createIndex()
    return coco


def test_two_boxes():
    # 10x10 and 10x10 overlapping in a 5x10 strip: 50 / 200
    assert box_occlusion_ratio([[0, 0, 10, 10], [5, 0, 10, 10]]) == pytest.approx(0.25)


def test_three_boxes_sum_over_pairs():
    boxes = [[0, 0, 10, 10], [5, 0, 10, 10], [0, 5, 10, 10]]
    # pairs: (0,1) 50, (0,2) 50, (1,2) 5x5=25; total area 300
    assert box_occlusion_ratio(boxes) == pytest.approx(125 / 300)


def test_nested_and_identical_boxes():
    assert box_occlusion_ratio([[0, 0, 10, 10], [2, 2, 4, 4]]) == pytest.approx(16 / 116)
    # identical boxes: each pair counts once
    assert box_occlusion_ratio([[0, 0, 4, 4]] * 3) == pytest.approx(3 * 16 / 48)


def test_touching_single_and_empty():
    assert box_occlusion_ratio([[0, 0, 10, 10], [10, 0, 10, 10]]) == 0.0
    assert box_occlusion_ratio([[0, 0, 10, 10]]) == 0.0
    assert box_occlusion_ratio(np.zeros((0, 4))) == 0.0


def test_image_ratios_skip_crowd_and_count_instances():
    coco = make_coco({
        1: [(0, 0, 10, 10, 0), (5, 0, 10, 10, 0)],
        2: [(0, 0, 10, 10, 0), (5, 0, 10, 10, 1)],  # the crowd box does not count
        3: [],
    })
    ratios = image_occlusion_ratios(coco)
    assert ratios[1] == (pytest.approx(0.25), 2)
    assert ratios[2] == (0.0, 1)
    assert ratios[3] == (0.0, 0)


def test_mask_overlap_uses_mask_areas():
    # two discs whose boxes overlap but whose masks barely do
    m = np.zeros((2, 60, 60), np.uint8)
    yy, xx = np.mgrid[:60, :60]
    m[0] = (yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2
    m[1] = (yy - 42) ** 2 + (xx - 42) ** 2 <= 15 ** 2
    rles = [mask_utils.encode(np.asfortranarray(x)) for x in m]
    expected = (m[0] & m[1]).sum() / m.sum()
    assert mask_occlusion_ratio(rles) == pytest.approx(expected)
    boxes = mask_utils.toBbox(rles)
    assert box_occlusion_ratio(boxes) > mask_occlusion_ratio(rles)


def test_mask_overlap_of_square_masks_equals_box_overlap():
    coco = make_coco({1: [(0, 0, 10, 10, 0), (5, 0, 10, 10, 0), (0, 5, 10, 10, 0)]})
    assert image_occlusion_ratios(coco, overlap='mask')[1][0] == pytest.approx(
        image_occlusion_ratios(coco, overlap='box')[1][0], abs=1e-6)


def test_buckets():
    assert parse_bins([0, 0.2, 'inf']).ranges == ((0.0, 0.2), (0.2, math.inf))
    cumulative = parse_bins([0, 0.2, 0.5, 'inf'], cumulative=True)
    assert cumulative.ranges == ((0.0, math.inf), (0.2, math.inf), (0.5, math.inf))
    assert cumulative.names == ['>=0', '>=0.2', '>=0.5']
    assert parse_bins([0, 0.2, 'inf']).names == ['0-0.2', '0.2-inf']
    assert bucket_name(0.2, 0.4) == '0.2-0.4'
    assert bucket_name(0.8, math.inf) == '0.8-inf'
    assert bucket_name(0.4, math.inf, cumulative=True) == '>=0.4'


@pytest.mark.parametrize('bins, message', [
    ([0.5], 'at least two'), ([0, 0.4, 0.2], 'strictly increasing'), ([-1, 0, 1], 'non-negative'),
    (['a', 1], 'bins must be numbers'),
    ('05', "bins must be a list of edges, got the string '05'"),  # not the edges [0, 5]
    ([0, float('nan')], 'bins must be numbers, got NaN'), ([0, 'nan', 1], 'got NaN'),
])
def test_bad_bins(bins, message):
    with pytest.raises(OcclusionEvalError, match=re.escape(message)):
        parse_bins(bins)


def test_bad_overlap():
    with pytest.raises(OcclusionEvalError, match='overlap'):
        image_occlusion_ratios(make_coco({1: []}), overlap='area')


def test_mask_overlap_without_masks_names_the_annotation():
    coco = make_coco({1: [(0, 0, 10, 10, 0), (5, 0, 10, 10, 0)], 2: [(0, 0, 4, 4, 1)]})
    del coco.anns[2]['segmentation']
    del coco.anns[3]['segmentation']  # a crowd box: not used by the ratio
    with pytest.raises(OcclusionEvalError,
                       match=r"annotation 2 of image 1 has no segmentation .*overlap='mask'"):
        image_occlusion_ratios(coco, overlap='mask')
    assert image_occlusion_ratios(coco, [2], overlap='mask') == {2: (0.0, 0)}
