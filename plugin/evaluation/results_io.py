"""Reading ground truth and detections for offline occlusion evaluation, with clear errors.

Detections come as a COCO results json (a list of ``{image_id, category_id, bbox|segmentation,
score}``) or as the pkl written by ``tools/test.py --out`` (mmdet's ``DumpDetResults``: a list of
``{img_id, pred_instances: {bboxes (xyxy), scores, labels, masks (RLE)}}``). Labels of the pkl
map to the annotation file's categories in ascending id order, as mmdet's ``CocoDataset`` does
when the config's classes are the file's categories. A pkl is read with
:mod:`plugin.utils.safe_pickle`: one that would call anything else than the constructors of those
objects is refused without running it.
"""
import contextlib
import io
import json
import os.path as osp
from typing import List

import numpy as np
from pycocotools.coco import COCO

from ..utils.safe_pickle import ForbiddenGlobalError
from ..utils.safe_pickle import load as load_pickle
from .occlusion import OcclusionEvalError


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
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _to_list(x) -> list:
    return x.tolist() if hasattr(x, 'tolist') else list(x)


def _from_pkl(samples: list, coco_gt: COCO, path: str) -> List[dict]:
    """mmdet ``DumpDetResults`` samples to COCO results."""
    cat_ids = sorted(coco_gt.getCatIds())
    dets = []
    for sample in samples:
        if not isinstance(sample, dict) or 'pred_instances' not in sample or 'img_id' not in sample:
            raise OcclusionEvalError(f'{path} is not a tools/test.py --out pkl of detections '
                                     '(entries need img_id and pred_instances)')
        pred = sample['pred_instances']
        boxes = np.asarray(_to_list(pred['bboxes']), dtype=np.float64).reshape(-1, 4)
        scores, labels = _to_list(pred['scores']), [int(v) for v in _to_list(pred['labels'])]
        masks = pred.get('masks')
        for k, (box, score, label) in enumerate(zip(boxes, scores, labels)):
            if not 0 <= label < len(cat_ids):
                raise OcclusionEvalError(
                    f'{path}: label {label} has no category; the annotation file has '
                    f'{len(cat_ids)} categories')
            det = dict(image_id=sample['img_id'], category_id=cat_ids[label], score=float(score),
                       bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]])
            if masks is not None:
                rle = dict(masks[k])
                if isinstance(rle['counts'], bytes):
                    rle['counts'] = rle['counts'].decode()
                det['segmentation'] = rle
            dets.append(det)
    return dets


def load_detections(path: str, coco_gt: COCO, iou_type: str) -> List[dict]:
    """COCO-format detections from a results json or pkl, checked against the ground truth."""
    if not osp.isfile(path):
        raise OcclusionEvalError(f'results file not found: {path}')
    if path.endswith(('.pkl', '.pickle')):
        with open(path, 'rb') as f:
            try:
                data = load_pickle(f)
            except ForbiddenGlobalError as e:
                raise OcclusionEvalError(f'{path} is refused: {e}') from None
            except Exception as e:  # any unpickling failure means: not our pkl
                raise OcclusionEvalError(f'{path} is not a readable pkl: {e}') from None
        if not isinstance(data, list):
            raise OcclusionEvalError(f'{path} is not a tools/test.py --out pkl (not a list)')
        dets = _from_pkl(data, coco_gt, path)
    else:
        try:
            with open(path) as f:
                dets = json.load(f)
        except ValueError as e:
            raise OcclusionEvalError(f'{path} is not a json file: {e}') from None
        if not isinstance(dets, list) or not all(isinstance(d, dict) for d in dets):
            raise OcclusionEvalError(f'{path} is not a COCO results file (a list of detections)')
    if not dets:
        raise OcclusionEvalError(f'{path} holds no detections')
    key = 'bbox' if iou_type == 'bbox' else 'segmentation'
    for n, d in enumerate(dets):
        lacking = [k for k in ('image_id', 'category_id', 'score', key) if k not in d]
        if lacking:
            raise OcclusionEvalError(f'{path}: detection {n} has no {", ".join(lacking)}'
                                     + (' (needed for --iou-type segm)' if key in lacking
                                        and key == 'segmentation' else ''))
    unknown_imgs = sorted({d['image_id'] for d in dets} - set(coco_gt.getImgIds()))
    if unknown_imgs:
        raise OcclusionEvalError(
            f'{path}: {len(unknown_imgs)} image id(s) are not in the annotation file, '
            f'e.g. {unknown_imgs[:5]}')
    unknown_cats = sorted({d['category_id'] for d in dets} - set(coco_gt.getCatIds()))
    if unknown_cats:
        raise OcclusionEvalError(
            f'{path}: category id(s) {unknown_cats[:10]} are not in the annotation file '
            f'(it has {sorted(coco_gt.getCatIds())})')
    if iou_type == 'bbox':
        bad = [n for n, d in enumerate(dets)
               if len(d['bbox']) != 4 or d['bbox'][2] <= 0 or d['bbox'][3] <= 0]
        if bad:
            raise OcclusionEvalError(
                f'{path}: {len(bad)} box(es) have zero or negative width/height (or are not '
                f'[x, y, w, h]), e.g. detection {bad[0]}: {dets[bad[0]]["bbox"]}')
    else:
        for d in dets:
            d.pop('bbox', None)  # mask areas, not box areas, for APs/m/l (as mmdet's CocoMetric)
    return dets
