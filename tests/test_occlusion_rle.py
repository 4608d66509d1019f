"""The RLE check of detections decodes COCO's compressed counts exactly as pycocotools does."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from plugin.evaluation.results_io import rle_runs


def runs_to_mask(runs, height, width):
    """Runs alternate background and foreground, column-major (COCO's order)."""
    flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)
    return flat.reshape(width, height).T


@pytest.mark.parametrize('seed', range(4))
def test_runs_rebuild_the_mask_pycocotools_decodes(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 300, size=2)
    masks = [np.zeros((height, width), np.uint8), np.ones((height, width), np.uint8),
             (rng.random((height, width)) < 0.5).astype(np.uint8),  # many short runs
             (rng.random((height, width)) < 0.002).astype(np.uint8)]  # long runs, big deltas
    for mask in masks:
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs = rle_runs(rle['counts'])
        assert runs.min() >= 0 and runs.sum() == height * width
        np.testing.assert_array_equal(runs_to_mask(runs, height, width), mask_utils.decode(rle))


@pytest.mark.parametrize('counts', [b'ab\x01c', b'0P', b'\x7f', b'o' * 8 + b'0'])
def test_malformed_counts_are_none(counts):
    # a character outside '0'..'o', an unfinished last number, more than 35 bits
    assert rle_runs(counts) is None
