"""Reading ground truth and detections for offline occlusion evaluation, with clear errors.

Detections come as a COCO results json (a list of ``{image_id, category_id, bbox|segmentation,
score}``) or as the pkl written by ``tools/test.py --out`` (mmdet's ``DumpDetResults``: a list of
``{img_id, img_path, pred_instances: {bboxes (xyxy), scores, labels, masks (RLE)}}``). Labels of
the pkl map to the annotation file's categories in ascending id order, as mmdet's ``CocoDataset``
does when the config's classes are the file's categories. A pkl is read with
:mod:`plugin.utils.safe_pickle`: one that would call anything else than the constructors of those
objects is refused without running it.
"""
import contextlib
import io
import json
import math
import numbers
import os.path as osp
import re
from typing import List, NamedTuple, Optional

import numpy as np
from pycocotools.coco import COCO

from ..structures.occlusion_ratio import OcclusionEvalError
from ..utils.safe_pickle import ForbiddenGlobalError
from ..utils.safe_pickle import load as load_pickle


class Detections(NamedTuple):
    """COCO-format detections and the images they were computed on (None: every GT image)."""
    dets: List[dict]
    img_ids: Optional[List[int]]


def load_gt(path: str) -> COCO:
    if not osp.isfile(path):
        raise OcclusionEvalError(f'annotation file not found: {path}')
    try:
        with open(path) as f:
            dataset = json.load(f)
    except (OSError, ValueError) as e:
        raise OcclusionEvalError(f'{path} is not a json file: {e}') from None
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(dataset, dict) or k not in dataset]
    if missing:
        raise OcclusionEvalError(f'{path} is not a COCO annotation file (no {", ".join(missing)})')
    return coco_of(dataset)


def coco_of(dataset: dict) -> COCO:
    """A pycocotools ``COCO`` of a loaded annotation file, indexed without its prints."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def rle_runs(counts: bytes) -> Optional[np.ndarray]:
    """Run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``); None if the
    string is malformed. Runs alternate background and foreground, column-major."""
    c = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if c.min() < 0 or c.max() > 63 or c[-1] & 0x20:  # bad character, or last number unfinished
        return None
    ends = np.flatnonzero((c & 0x20) == 0)  # the last character of each number, 5 bits each
    starts = np.r_[0, ends[:-1] + 1]
    length = ends - starts + 1
    if length.max() > 7:  # more than 35 bits: not a run length
        return None
    k = np.arange(c.size) - np.repeat(starts, length)
    x = np.add.reduceat((c & 0x1f) << (5 * k), starts)
    x -= np.where(c[ends] & 0x10, 1 << (5 * length), 0)  # sign bit of the last character
    runs = x.copy()  # from the fourth run on, each is stored as a difference to two runs before
    runs[1::2] = np.cumsum(x[1::2])
    runs[2::2] = np.cumsum(x[2::2])
    return runs


def _rle_problem(rle, height: int, width: int) -> Optional[str]:
    """What is wrong with a detection's RLE on an image of ``height`` x ``width``, or None."""
    if not isinstance(rle, dict) or 'size' not in rle or 'counts' not in rle:
        return f'segmentation must be an RLE {{size, counts}}, got {type(rle).__name__}'
    size = rle['size']
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        return (f'segmentation size {size!r} is not the image size [{height}, {width}] '
                '(height, width)')
    counts = rle['counts']
    try:
        counts = counts.encode('ascii') if isinstance(counts, str) else counts
    except UnicodeEncodeError:
        counts = None
    runs = rle_runs(counts) if isinstance(counts, bytes) else None
    if runs is None:
        return 'segmentation counts is not a compressed COCO RLE string'
    if runs.min(initial=0) < 0 or runs.sum() != height * width:
        return (f'segmentation counts cover {int(runs.sum())} pixels (or negative runs), '
                f'not {height}x{width}')
    return None


def _split_of_ann_file(path: str) -> Optional[str]:
    """'val' of instances_val2017.json; None of trainval.json or minival.json."""
    found = re.search(r'(?<![a-z])(train|val|test)(?![a-z])', osp.basename(path).lower())
    return found and found.group(1)


def _split_of_img_path(img_path: str) -> Optional[str]:
    """'val' of data/coco/val2017/x.jpg or images/val/x.png: the innermost split folder."""
    for part in reversed(img_path.split('/')[:-1]):
        found = re.fullmatch(r'(train|val|test)\d*', part.lower())
        if found:
            return found.group(1)
    return None


def _image_mismatch(sample: dict, img_info: Optional[dict], gt_path: Optional[str]):
    """Why a pkl entry is not the annotation file's image of its id (None if it may be)."""
    if img_info is None:
        return None  # reported with every unknown image id
    img_path, name = sample.get('img_path'), img_info.get('file_name')
    if isinstance(img_path, str) and isinstance(name, str):
        img_path, name = img_path.replace('\\', '/'), name.replace('\\', '/')
        if img_path != name and not img_path.endswith('/' + name.lstrip('/')):
            return f'img_path {img_path} is not the annotation file\'s file_name {name}'
        ann_split, img_split = _split_of_ann_file(gt_path or ''), _split_of_img_path(img_path)
        if '/' not in name and ann_split and img_split and ann_split != img_split:
            return (f'img_path {img_path} lies in a {img_split!r} folder, the annotation file '
                    f'{gt_path} is a {ann_split!r} one')
    shape = sample.get('ori_shape')
    size = [img_info.get('height'), img_info.get('width')]
    if isinstance(shape, (tuple, list)) and len(shape) >= 2 and list(shape[:2]) != size:
        return f'ori_shape {tuple(shape)} is not the annotation file\'s image size {tuple(size)}'
    return None


def _from_pkl(samples: list, coco_gt: COCO, path: str, gt_path: Optional[str]) -> tuple:
    """mmdet ``DumpDetResults`` samples to COCO results, where each came from, the images."""
    cat_ids = sorted(coco_gt.getCatIds())
    dets, wheres, img_ids = [], [], []
    for k, sample in enumerate(samples):
        if not isinstance(sample, dict) or 'pred_instances' not in sample or 'img_id' not in sample:
            raise OcclusionEvalError(f'{path} is not a tools/test.py --out pkl of detections '
                                     '(entries need img_id and pred_instances)')
        img_id, pred = sample['img_id'], sample['pred_instances']
        entry = f'entry {k} (img_id {img_id!r})'
        where = f'{path}: {entry}'
        if not _is_int(img_id):
            raise OcclusionEvalError(f'{where}: img_id must be an integer')
        problem = _image_mismatch(sample, coco_gt.imgs.get(int(img_id)), gt_path)
        if problem:
            raise OcclusionEvalError(f'{where}: {problem}: are these results of another split '
                                     'or data set?')
        img_ids.append(int(img_id))
        if not isinstance(pred, dict):
            raise OcclusionEvalError(f'{where}: pred_instances must be a dict, got '
                                     f'{type(pred).__name__}')
        fields = {}
        for name in ('bboxes', 'scores', 'labels') + (('masks',) if 'masks' in pred else ()):
            value = pred.get(name)
            fields[name] = value.tolist() if hasattr(value, 'tolist') else value
            if not isinstance(fields[name], (list, tuple)):
                raise OcclusionEvalError(f'{where}: pred_instances.{name} must be a list or '
                                         f'an array, got {type(value).__name__}')
        if len({len(v) for v in fields.values()}) > 1:
            raise OcclusionEvalError(f'{where}: pred_instances have different lengths: '
                                     + ', '.join(f'{n} {len(v)}' for n, v in fields.items()))
        for j, (box, score, label) in enumerate(
                zip(fields['bboxes'], fields['scores'], fields['labels'])):
            wheres.append(f'{entry} detection {j}')
            if not _is_int(label) or not 0 <= label < len(cat_ids):
                raise OcclusionEvalError(
                    f'{where} detection {j}: label {label!r} has no category; the annotation '
                    f'file has {len(cat_ids)} categories')
            if not (isinstance(box, (list, tuple)) and len(box) == 4
                    and all(_is_finite(v) for v in box)):
                raise OcclusionEvalError(f'{where} detection {j}: bboxes must be [x1, y1, x2, y2]'
                                         f' of finite numbers, got {box!r}')
            det = dict(image_id=int(img_id), category_id=cat_ids[label], score=score,
                       bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]])
            if 'masks' in fields:
                rle = fields['masks'][j]
                if isinstance(rle, dict) and isinstance(rle.get('counts'), bytes):
                    rle = dict(rle, counts=rle['counts'].decode('ascii', 'replace'))
                det['segmentation'] = rle
            dets.append(det)
    return dets, wheres, img_ids


def _read(path: str):
    if path.endswith(('.pkl', '.pickle')):
        with open(path, 'rb') as f:
            try:
                return load_pickle(f)
            except ForbiddenGlobalError as e:
                raise OcclusionEvalError(f'{path} is refused: {e}') from None
            except Exception as e:  # any unpickling failure means: not our pkl
                raise OcclusionEvalError(f'{path} is not a readable pkl: {e}') from None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        raise OcclusionEvalError(f'{path} is not a json file: {e}') from None


def load_detections(path: str, coco_gt: COCO, iou_type: str, only_result_images: bool = False,
                    gt_path: Optional[str] = None) -> Detections:
    """COCO-format detections from a results json or pkl, checked against the ground truth.

    The images evaluated are those of the pkl's entries (with or without detections); a results
    json does not say which images it covers, so it stands for every image of ``coco_gt``, as in
    pycocotools, unless ``only_result_images`` restricts it to the images it has detections on.
    A pkl entry's ``img_path`` and ``ori_shape`` must fit the image of its id in ``coco_gt``
    (read from ``gt_path``, whose split name, e.g. ``instances_val.json``, must then also be
    the one of the image folder when the file names carry no folder).
    """
    if not osp.isfile(path):
        raise OcclusionEvalError(f'results file not found: {path}')
    data = _read(path)
    wheres = None
    if path.endswith(('.pkl', '.pickle')):
        if not isinstance(data, list):
            raise OcclusionEvalError(f'{path} is not a tools/test.py --out pkl (not a list)')
        dets, wheres, img_ids = _from_pkl(data, coco_gt, path, gt_path)
    else:
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise OcclusionEvalError(f'{path} is not a COCO results file (a list of detections)')
        dets, img_ids = data, None
    key = 'bbox' if iou_type == 'bbox' else 'segmentation'
    for n, d in enumerate(dets):
        where = f'{path}: ' + (wheres[n] if wheres else f'detection {n}')
        lacking = [k for k in ('image_id', 'category_id', 'score', key) if k not in d]
        if lacking:
            raise OcclusionEvalError(f'{where} has no {", ".join(lacking)}'
                                     + (' (needed for --iou-type segm)' if key in lacking
                                        and key == 'segmentation' else ''))
        for k in ('image_id', 'category_id'):
            if not _is_int(d[k]):
                raise OcclusionEvalError(f'{where}: {k} must be an integer, got {d[k]!r}')
        if not _is_finite(d['score']):
            raise OcclusionEvalError(f"{where}: score must be a finite number, got {d['score']!r}")
        if iou_type == 'bbox' and not (isinstance(d['bbox'], list) and len(d['bbox']) == 4
                                       and all(_is_finite(v) for v in d['bbox'])):
            raise OcclusionEvalError(
                f"{where}: bbox must be [x, y, w, h] of finite numbers, got {d['bbox']!r}")
    unknown_imgs = sorted(({d['image_id'] for d in dets} | set(img_ids or ()))
                          - set(coco_gt.getImgIds()))
    if unknown_imgs:
        raise OcclusionEvalError(
            f'{path}: {len(unknown_imgs)} image id(s) are not in the annotation file, '
            f'e.g. {unknown_imgs[:5]}')
    unknown_cats = sorted({d['category_id'] for d in dets} - set(coco_gt.getCatIds()))
    if unknown_cats:
        raise OcclusionEvalError(
            f'{path}: category id(s) {unknown_cats[:10]} are not in the annotation file '
            f'(it has {sorted(coco_gt.getCatIds())})')
    for n, d in enumerate(dets):
        where = f'{path}: ' + (wheres[n] if wheres else f'detection {n}')
        if iou_type == 'bbox':
            if d['bbox'][2] <= 0 or d['bbox'][3] <= 0:
                raise OcclusionEvalError(
                    f"{where}: bbox has zero or negative width/height: {d['bbox']}")
        else:
            img = coco_gt.imgs[d['image_id']]
            problem = _rle_problem(d['segmentation'], img.get('height'), img.get('width'))
            if problem:
                raise OcclusionEvalError(f"{where} (image {d['image_id']}): {problem}")
            d.pop('bbox', None)  # mask areas, not box areas, for APs/m/l (as mmdet's CocoMetric)
    if only_result_images and img_ids is None:
        img_ids = sorted({d['image_id'] for d in dets})
    return Detections(dets, img_ids)
