"""The occlusion ratio of an image, and the buckets that group images by it.

The ratio is our reading of the TBC paper's "r = total overlap area / total instance area"
(arXiv 2009.12021, Sec. 4.3, "highly occluded instances"; the paper says no more,
docs/occlusion_eval.md lists the other readings)::

    r = sum_{i<j} area(b_i ∩ b_j) / sum_i area(b_i)

over an image's instances: their boxes, or their masks; a sum over pairs, so a pixel inside three
boxes counts three times. The data generator (:mod:`plugin.datasets.occlusion_shapes`) aims its
images at the buckets and the evaluation (:mod:`plugin.evaluation.occlusion`) reports AP per
bucket; this module imports neither.
"""
import math
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

DEFAULT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, math.inf)


class OcclusionEvalError(ValueError):
    """Bad input to the occlusion evaluation; the message is meant for the user as it is."""


def box_occlusion_ratio(boxes: np.ndarray) -> float:
    """Occlusion ratio of one image from its ``(N, 4)`` boxes in COCO ``xywh`` format."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    areas = boxes[:, 2].clip(min=0) * boxes[:, 3].clip(min=0)
    total = areas.sum()
    if len(boxes) < 2 or total <= 0:
        return 0.0
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    iw = (np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])).clip(min=0)
    ih = (np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])).clip(min=0)
    return float(np.triu(iw * ih, k=1).sum() / total)


def mask_occlusion_ratio(rles: Sequence[dict]) -> float:
    """Occlusion ratio of one image from its instance masks as COCO RLEs (one image size)."""
    rles = list(rles)
    if len(rles) < 2:
        return 0.0
    total = float(mask_utils.area(rles).sum())
    if total <= 0:
        return 0.0
    boxes = mask_utils.toBbox(rles)
    inter = 0.0
    for i in range(len(rles)):
        for j in range(i + 1, len(rles)):
            if box_occlusion_ratio(boxes[[i, j]]) > 0:  # masks can only meet where boxes do
                both = mask_utils.merge([rles[i], rles[j]], intersect=True)
                inter += float(mask_utils.area(both))
    return inter / total


def bucket_name(lo: float, hi: float, cumulative: bool = False) -> str:
    """Key used in metric names: ``'0.2-0.4'``, ``'0.8-inf'``, or ``'>=0.4'`` if cumulative."""
    return f'>={lo:g}' if cumulative else f'{lo:g}-{hi:g}'


class Buckets(NamedTuple):
    """Occlusion buckets as :func:`parse_bins` returns them: an image of ratio r is in the bucket
    ``(lo, hi)`` of ``ranges`` if ``lo <= r < hi``; ``cumulative`` buckets are ``r >= lo``."""
    ranges: Tuple[Tuple[float, float], ...]
    cumulative: bool = False

    @property
    def names(self) -> List[str]:
        return [bucket_name(lo, hi, self.cumulative) for lo, hi in self.ranges]


def parse_bins(bins: Sequence = DEFAULT_BINS, cumulative: bool = False) -> Buckets:
    """The buckets of the edges ``bins``: one per pair of consecutive edges, or ``(t, inf)`` for
    each finite edge ``t`` if ``cumulative``.

    Edges may be numbers or strings such as ``'inf'`` (configs cannot write ``math.inf``). The one
    place where bins are checked: raises :class:`OcclusionEvalError` unless they are at least two
    non-negative, strictly increasing numbers.
    """
    if isinstance(bins, (str, bytes)):  # '05' would iterate into the edges [0, 5]
        raise OcclusionEvalError(f'bins must be a list of edges, got the string {bins!r}')
    try:
        edges = [float(b) for b in bins]
    except (TypeError, ValueError):
        raise OcclusionEvalError(f'bins must be numbers, got {bins!r}') from None
    if any(math.isnan(b) for b in edges):
        raise OcclusionEvalError(f'bins must be numbers, got NaN in {list(bins)}')
    if len(edges) < 2 or edges[0] < 0 or any(b >= c for b, c in zip(edges, edges[1:])):
        raise OcclusionEvalError(
            f'bins must be at least two non-negative, strictly increasing edges, got {list(bins)}')
    if cumulative:
        return Buckets(tuple((t, math.inf) for t in edges if math.isfinite(t)), True)
    return Buckets(tuple(zip(edges, edges[1:])), False)


DEFAULT_BUCKETS = parse_bins(DEFAULT_BINS)
