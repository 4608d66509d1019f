"""tools/analysis/occlusion_eval.py: reports, pkl input, and one clear line on bad input."""
import json
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, load_tool, run_tool
from plugin.evaluation.occlusion import evaluate_by_occlusion, load_results
from plugin.evaluation.results_io import load_gt

CLI = osp.join(ROOT, 'tools', 'analysis', 'occlusion_eval.py')


def gt_dets(coco, score=0.9):
    return [dict(image_id=a['image_id'], category_id=a['category_id'],
                 bbox=[a['bbox'][0] + 1, a['bbox'][1], a['bbox'][2], a['bbox'][3]], score=score)
            for a in coco.dataset['annotations']]


def load_cli():
    return load_tool('tools/analysis/occlusion_eval.py')


def cli_error(*args):
    """The message ``main`` exits with (in-process: the startup of a new python costs seconds)."""
    with pytest.raises(SystemExit) as exc:
        load_cli().main(list(args))
    return str(exc.value.code)


def test_report_and_plot(shapes_data, tmp_path):
    coco = load_gt(shapes_data['val'])
    dets = gt_dets(coco)
    res = tmp_path / 'dets.json'
    res.write_text(json.dumps(dets))
    out, plot = tmp_path / 'report.json', tmp_path / 'plot.png'
    proc = run_tool([CLI, shapes_data['val'], str(res), '--iou-type', 'bbox', '--out', str(out),
                     '--plot', str(plot)])
    report = json.loads(out.read_text())
    expected = evaluate_by_occlusion(coco, load_results(coco, dets), 'bbox')
    assert [b['AP'] for b in report['buckets']] == [b['AP'] for b in expected['buckets']]
    assert set(report['buckets'][0]) >= {'lo', 'hi', 'num_images', 'num_instances', 'AP',
                                         'AP50', 'AP75', 'APs', 'APm', 'APl'}
    assert report['buckets'][-1]['hi'] is None and report['overall']['num_images'] == 10
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b'\x89PNG'
    assert '0.8-inf' in proc.stdout and 'bbox_AP' in proc.stdout


def test_pkl_of_tools_test_equals_json(shapes_data, tmp_path):
    """The DumpDetResults pkl (xyxy boxes, label indices) gives the same numbers as the json."""
    coco = load_gt(shapes_data['val'])
    dets = gt_dets(coco, score=0.8)
    cat_ids = sorted(coco.getCatIds())
    samples = []
    for img_id in coco.getImgIds():
        mine = [d for d in dets if d['image_id'] == img_id]
        boxes = torch.tensor([[d['bbox'][0], d['bbox'][1], d['bbox'][0] + d['bbox'][2],
                               d['bbox'][1] + d['bbox'][3]] for d in mine]).reshape(-1, 4)
        samples.append(dict(img_id=img_id, pred_instances=dict(
            bboxes=boxes, scores=torch.tensor([d['score'] for d in mine]),
            labels=torch.tensor([cat_ids.index(d['category_id']) for d in mine]))))
    pkl, js = tmp_path / 'r.pkl', tmp_path / 'r.json'
    pkl.write_bytes(pickle.dumps(samples))
    js.write_text(json.dumps(dets))
    reports = []
    for res in (pkl, js):
        run_tool([CLI, shapes_data['val'], str(res), '--out', str(tmp_path / 'o.json')])
        reports.append(json.loads((tmp_path / 'o.json').read_text()))
    assert [b['AP'] for b in reports[0]['buckets']] == pytest.approx(
        [b['AP'] for b in reports[1]['buckets']])


def test_dataset_stats(shapes_data, tmp_path):
    hist = tmp_path / 'hist.png'
    proc = run_tool([CLI, shapes_data['val'], '--dataset-stats', str(hist)])
    assert 'occlusion ratio r over 10 images' in proc.stdout
    assert proc.stdout.count('images,') == 5 and hist.exists()


@pytest.mark.parametrize('case, message', [
    ('missing_gt', 'annotation file not found'),
    ('missing_results', 'results file not found'),
    ('not_coco', 'is not a COCO annotation file'),
    ('empty', 'holds no detections'),
    ('unknown_image', 'image id(s) are not in the annotation file'),
    ('unknown_category', 'category id(s) [99] are not in the annotation file'),
    ('zero_box', 'zero or negative width/height'),
    ('negative_box', 'zero or negative width/height'),
    ('segm_without_masks', 'has no segmentation'),
    ('bad_bins', 'bins must be'),
    ('bad_label_pkl', 'label 7 has no category'),
])
def test_errors_are_one_clear_line(shapes_data, tmp_path, case, message):
    coco = load_gt(shapes_data['val'])
    dets = gt_dets(coco)
    gt, res, extra = shapes_data['val'], tmp_path / 'r.json', []
    if case == 'missing_gt':
        gt = str(tmp_path / 'nope.json')
    elif case == 'missing_results':
        res = tmp_path / 'nope.json'
    elif case == 'not_coco':
        (tmp_path / 'x.json').write_text('{"foo": 1}')
        gt = str(tmp_path / 'x.json')
    elif case == 'empty':
        dets = []
    elif case == 'unknown_image':
        dets[0]['image_id'] = 12345
    elif case == 'unknown_category':
        dets[0]['category_id'] = 99
    elif case == 'zero_box':
        dets[3]['bbox'][2] = 0
    elif case == 'negative_box':
        dets[3]['bbox'][3] = -4
    elif case == 'segm_without_masks':
        extra = ['--iou-type', 'segm']
    elif case == 'bad_bins':
        extra = ['--bins', '0', '0.5', '0.2']
    elif case == 'bad_label_pkl':
        res = tmp_path / 'r.pkl'
        res.write_bytes(pickle.dumps([dict(img_id=1, pred_instances=dict(
            bboxes=np.array([[0, 0, 5, 5.]]), scores=np.array([0.5]), labels=np.array([7])))]))
    if res.suffix == '.json' and case != 'missing_results':
        res.write_text(json.dumps(dets))
    msg = cli_error(gt, str(res), *extra)
    assert len(msg.splitlines()) == 1 and msg.startswith('occlusion_eval: error:'), msg
    assert message in msg, msg


def test_error_is_printed_without_traceback(shapes_data, tmp_path):
    proc = subprocess.run([sys.executable, CLI, shapes_data['val'], str(tmp_path / 'none.json')],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'occlusion_eval: error: results file not found: {tmp_path / "none.json"}']
