"""Per-bucket AP equals pycocotools' COCOeval run on that bucket's images alone."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from synthetic import synthetic_detections
from plugin.evaluation.cocoeval_subsets import load_results
from plugin.evaluation.occlusion import (AP_NAMES, evaluate_by_occlusion, format_report,
                                         image_occlusion_ratios, occlusion_metrics)
from plugin.evaluation.results_io import load_gt
from plugin.structures.occlusion_ratio import DEFAULT_BINS, parse_bins


def reference_stats(coco, dets, iou_type, img_ids, **params):
    ev = COCOeval(coco, load_results(coco, dets), iou_type)
    ev.params.imgIds = sorted(img_ids)
    for k, v in params.items():
        setattr(ev.params, k, v)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [None if v < 0 else v for v in ev.stats]


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('cumulative', [False, True])
def test_bucket_ap_equals_cocoeval_on_subset(shapes_data, iou_type, cumulative):
    coco = load_gt(shapes_data['val'])
    dets = synthetic_detections(coco, iou_type)
    report = evaluate_by_occlusion(coco, load_results(coco, dets), iou_type,
                                   parse_bins(DEFAULT_BINS, cumulative))
    ratios = image_occlusion_ratios(coco)
    assert [b['name'] for b in report['buckets']] == (
        ['>=0', '>=0.2', '>=0.4', '>=0.6', '>=0.8'] if cumulative else
        ['0-0.2', '0.2-0.4', '0.4-0.6', '0.6-0.8', '0.8-inf'])
    assert report['cumulative'] is cumulative
    checked = 0
    for bucket in report['buckets']:
        hi = np.inf if bucket['hi'] is None else bucket['hi']
        ids = [i for i, (r, _) in ratios.items() if bucket['lo'] <= r < hi]
        assert bucket['num_images'] == len(ids)
        assert bucket['num_instances'] == sum(ratios[i][1] for i in ids)
        if not ids:
            continue
        ref = reference_stats(coco, dets, iou_type, ids)
        got = [bucket[k] for k in AP_NAMES + ('AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl')]
        assert got == pytest.approx(ref, abs=1e-6)
        checked += 1
    assert checked >= 3
    ref_all = reference_stats(coco, dets, iou_type, coco.getImgIds())
    assert report['overall']['AP'] == pytest.approx(ref_all[0], abs=1e-6)
    assert 0 < report['overall']['AP'] < 1  # not degenerate: the test can tell numbers apart


def test_params_are_passed_like_mmdet(shapes_data):
    coco = load_gt(shapes_data['val'])
    dets = synthetic_detections(coco, 'bbox', seed=1)
    report = evaluate_by_occlusion(coco, load_results(coco, dets), 'bbox',
                                   max_dets=(100, 300, 1000), cat_ids=[1, 2])
    ref = reference_stats(coco, dets, 'bbox', coco.getImgIds(), maxDets=[100, 300, 1000],
                          catIds=[1, 2])
    assert report['overall']['AP'] == pytest.approx(ref[0], abs=1e-6)
    assert 'AR1000' in report['overall']


def test_bucket_without_ground_truth_is_null(shapes_data):
    coco = load_gt(shapes_data['val'])
    dets = synthetic_detections(coco, 'bbox')
    report = evaluate_by_occlusion(coco, load_results(coco, dets), 'bbox',
                                   parse_bins([0, 0.2, 0.4, 0.6, 0.8, 50, 'inf']))
    empty = report['buckets'][-1]
    assert empty['num_images'] == 0 and empty['AP'] is None
    assert '-' in format_report(report).splitlines()[-2]
    metrics = occlusion_metrics({'bbox': report})
    assert metrics['occlusion/50-inf/bbox_AP'] == -1.0  # undefined, as in COCO's summary
    assert metrics['occlusion/50-inf/num_images'] == 0
    assert metrics['occlusion/0-0.2/bbox_AP50'] == report['buckets'][0]['AP50']


def test_metric_keys_bucket_by_bucket_then_the_next_iou_type():
    bucket = dict(name='0-0.5', num_images=3, AP=0.5, AP50=0.6, AP75=None, APs=0.1, APm=0.2,
                  APl=0.3)
    reports = {t: dict(buckets=[bucket, dict(bucket, name='0.5-inf', AP=0.4)])
               for t in ('bbox', 'segm')}
    stats = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
    expected = [f'occlusion/{b}/{k}' for t in ('bbox', 'segm') for b in ('0-0.5', '0.5-inf')
                for k in (['num_images'] if t == 'bbox' else []) + [f'{t}_{s}' for s in stats]]
    metrics = occlusion_metrics(reports)
    assert list(metrics) == expected
    assert metrics['occlusion/0.5-inf/segm_AP'] == 0.4
    assert metrics['occlusion/0-0.5/bbox_AP75'] == -1.0


def test_no_detections_gives_zero_ap(shapes_data):
    coco = load_gt(shapes_data['val'])
    report = evaluate_by_occlusion(coco, load_results(coco, []), 'bbox')
    assert all(b['AP'] == 0.0 for b in report['buckets'] if b['num_instances'])


def test_perfect_detections_give_ap_one(shapes_data):
    coco = load_gt(shapes_data['val'])
    dets = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'], score=1.0)
            for a in coco.dataset['annotations']]
    report = evaluate_by_occlusion(coco, load_results(coco, dets), 'bbox')
    assert all(b['AP'] == pytest.approx(1.0) for b in report['buckets'] if b['num_instances'])


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_faster_coco_eval_backend_gives_the_same_numbers(shapes_data, iou_type):
    pytest.importorskip('faster_coco_eval')
    coco = load_gt(shapes_data['val'])
    dets = synthetic_detections(coco, iou_type, seed=2)
    reports = [evaluate_by_occlusion(coco, load_results(coco, dets), iou_type, backend=b)
               for b in ('pycocotools', 'faster-coco-eval')]
    for a, b in zip(reports[0]['buckets'] + [reports[0]['overall']],
                    reports[1]['buckets'] + [reports[1]['overall']]):
        for k in AP_NAMES:
            assert (a[k] is None and b[k] is None) or a[k] == pytest.approx(b[k], abs=1e-4), k
