"""tools/analysis/occlusion_eval.py: reports, pkl input, and one clear line on bad input."""
import json
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from conftest import ROOT, load_tool, run_tool
from plugin.evaluation.cocoeval_subsets import load_results
from plugin.evaluation.occlusion import evaluate_by_occlusion, image_occlusion_ratios
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


def val_pkl(coco, root, dets=None, split='val', **meta):
    """A tools/test.py --out pkl of ``dets`` (default: none) on every image of ``coco``."""
    cat_ids = sorted(coco.getCatIds())
    samples = []
    for img in coco.dataset['images']:
        mine = [d for d in dets or [] if d['image_id'] == img['id']]
        boxes = np.array([d['bbox'] for d in mine], np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        samples.append(dict(
            img_id=img['id'], img_path=osp.join(root, 'images', split, img['file_name']),
            ori_shape=(img['height'], img['width']), **meta,
            pred_instances=dict(bboxes=torch.from_numpy(boxes),
                                scores=torch.tensor([d['score'] for d in mine]),
                                labels=torch.tensor([cat_ids.index(d['category_id'])
                                                     for d in mine], dtype=torch.long))))
    return samples


def without_masks(path, tmp_path):
    data = json.loads(open(path).read())
    for a in data['annotations']:
        del a['segmentation']
    out = tmp_path / 'instances_val_boxes.json'
    out.write_text(json.dumps(data))
    return str(out)


def segm_dets(coco):
    from synthetic import synthetic_detections
    return synthetic_detections(coco, 'segm')


@pytest.mark.parametrize('case, message', [
    ('nan_score', "detection 3: score must be a finite number, got nan"),
    ('inf_box', "detection 3: bbox must be [x, y, w, h] of finite numbers, got [inf,"),
    ('string_score', "detection 3: score must be a finite number, got '0.9'"),
    ('string_box', "detection 3: bbox must be [x, y, w, h] of finite numbers, got '1 2 3 4'"),
    ('list_image_id', 'detection 3: image_id must be an integer, got [1]'),
    ('bins_nan', 'bins must be numbers, got NaN'),
    ('rle_wrong_size', 'detection 2 (image 1): segmentation size [48, 48] is not the image '
                       'size [96, 96]'),
    ('rle_garbage_counts', 'detection 2 (image 1): segmentation counts cover 2304 pixels'),
    ('rle_not_rle', 'detection 2 (image 1): segmentation counts is not a compressed COCO RLE'),
    ('pkl_nan_score', 'entry 0 (img_id 1) detection 1: score must be a finite number, got nan'),
    ('pkl_nan_box', 'entry 0 (img_id 1) detection 1: bboxes must be [x1, y1, x2, y2] of finite'),
    ('pkl_string_box', 'entry 0 (img_id 1): pred_instances.bboxes must be a list or an array'),
    ('pkl_list_img_id', 'entry 0 (img_id [1]): img_id must be an integer'),
    ('pkl_other_size', 'entry 0 (img_id 1): ori_shape (64, 96) is not the annotation file'),
    ('pkl_lengths', 'entry 0 (img_id 1): pred_instances have different lengths: bboxes 2, '
                    'scores 1'),
    ('gt_without_masks_segm', 'has no segmentation (masks are needed for --iou-type segm)'),
    ('gt_without_masks_overlap', 'has no segmentation (masks are needed for --overlap mask)'),
    ('gt_without_masks_stats', 'has no segmentation (masks are needed for --overlap mask)'),
    ('unwritable_out', 'cannot write --out'),
    ('unwritable_plot', 'cannot write --plot'),
])
def test_bad_numbers_and_files_are_one_clear_line(shapes_data, tmp_path, case, message):
    """Every field that is not what it says names the field, the entry and the file."""
    coco = load_gt(shapes_data['val'])
    gt, extra = shapes_data['val'], []
    dets = segm_dets(coco) if case.startswith('rle') else gt_dets(coco)
    res = tmp_path / ('r.pkl' if case.startswith('pkl') else 'r.json')
    first = gt_dets(coco)[0]
    assert first['image_id'] == 1
    samples = val_pkl(coco, shapes_data['root'], [first, dict(first, score=0.5)])
    if case == 'nan_score':
        dets[3]['score'] = float('nan')
    elif case == 'inf_box':
        dets[3]['bbox'][0] = float('inf')
    elif case == 'string_score':
        dets[3]['score'] = '0.9'
    elif case == 'string_box':
        dets[3]['bbox'] = '1 2 3 4'
    elif case == 'list_image_id':
        dets[3]['image_id'] = [1]
    elif case == 'bins_nan':
        extra = ['--bins', '0', 'nan']
    elif case.startswith('rle'):
        first = [n for n, d in enumerate(dets) if d['image_id'] == 1][2]
        dets.insert(2, dets.pop(first))  # detection 2 is on image 1
        rle = dets[2]['segmentation']
        if case == 'rle_wrong_size':
            rle['size'] = [48, 48]
        elif case == 'rle_garbage_counts':  # well-formed, but of a 48x48 mask
            rle['counts'] = mask_utils.encode(np.ones((48, 48), np.uint8, order='F'))['counts']
            rle['counts'] = rle['counts'].decode()
        else:
            rle['counts'] = 'ab\x01c'
        extra = ['--iou-type', 'segm']
    elif case == 'pkl_nan_score':
        samples[0]['pred_instances']['scores'][1] = float('nan')
    elif case == 'pkl_nan_box':
        samples[0]['pred_instances']['bboxes'][1, 2] = float('nan')
    elif case == 'pkl_string_box':
        samples[0]['pred_instances']['bboxes'] = 'boxes'
    elif case == 'pkl_list_img_id':
        samples[0]['img_id'] = [1]
    elif case == 'pkl_other_size':
        samples[0]['ori_shape'] = (64, 96)
    elif case == 'pkl_lengths':
        samples[0]['pred_instances']['scores'] = samples[0]['pred_instances']['scores'][:1]
    elif case.startswith('gt_without_masks'):
        gt = without_masks(gt, tmp_path)
        extra = {'segm': ['--iou-type', 'segm'], 'overlap': ['--overlap', 'mask'],
                 'stats': ['--overlap', 'mask', '--dataset-stats']}[case.split('_')[-1]]
        dets = segm_dets(coco) if case.endswith('segm') else dets
    elif case == 'unwritable_out':
        (tmp_path / 'file').write_text('')
        extra = ['--out', str(tmp_path / 'file' / 'report.json')]
    elif case == 'unwritable_plot':
        (tmp_path / 'file').write_text('')
        extra = ['--plot', str(tmp_path / 'file' / 'plot.png')]
    if res.suffix == '.pkl':
        res.write_bytes(pickle.dumps(samples))
    else:
        res.write_text(json.dumps(dets))
    args = [gt] + ([] if case.endswith('stats') else [str(res)]) + extra
    msg = cli_error(*args)
    assert len(msg.splitlines()) == 1 and msg.startswith('occlusion_eval: error:'), msg
    assert message in msg, msg
    named = gt if case.startswith('gt_') else str(res)
    if not case.startswith(('bins', 'unwritable')):
        assert named in msg, msg


def test_val_pkl_against_train_annotations_names_both(shapes_data, tmp_path):
    coco = load_gt(shapes_data['val'])
    pkl = tmp_path / 'r.pkl'
    pkl.write_bytes(pickle.dumps(val_pkl(coco, shapes_data['root'], gt_dets(coco))))
    msg = cli_error(shapes_data['train'], str(pkl))
    assert "lies in a 'val' folder" in msg and "is a 'train' one" in msg, msg
    assert 'another split' in msg
    # the same pkl against its own annotation file is fine
    load_cli().main([shapes_data['val'], str(pkl), '--out', str(tmp_path / 'o.json')])


@pytest.mark.parametrize('kind', ['pkl', 'json'])
def test_no_detections_gives_ap_zero_with_a_warning(shapes_data, tmp_path, capsys, kind):
    coco = load_gt(shapes_data['val'])
    res, out = tmp_path / f'r.{kind}', tmp_path / 'report.json'
    if kind == 'pkl':
        res.write_bytes(pickle.dumps(val_pkl(coco, shapes_data['root'])))
    else:
        res.write_text('[]')
    load_cli().main([shapes_data['val'], str(res), '--out', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'occlusion_eval: warning: {res} holds no detections: AP is 0 in every '
                   'bucket']
    report = json.loads(out.read_text())
    assert report['overall']['num_images'] == 10
    assert all(b['AP'] == 0.0 for b in report['buckets'] if b['num_instances'])
    assert all(b['AP'] is None for b in report['buckets'] if not b['num_instances'])


def test_only_evaluated_images_count(shapes_data, tmp_path):
    """A pkl of 4 of the 10 images is evaluated on those 4; a json on all 10 unless
    --only-result-images."""
    coco = load_gt(shapes_data['val'])
    dets = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'], score=0.7)
            for a in coco.dataset['annotations']]
    subset = [2, 3, 7, 9]
    samples = [s for s in val_pkl(coco, shapes_data['root'], dets) if s['img_id'] in subset]
    pkl, js = tmp_path / 'r.pkl', tmp_path / 'r.json'
    pkl.write_bytes(pickle.dumps(samples))
    js.write_text(json.dumps([d for d in dets if d['image_id'] in subset]))
    reports = {}
    for name, res, extra in (('pkl', pkl, []), ('json', js, []),
                             ('json_only', js, ['--only-result-images'])):
        out = tmp_path / f'{name}.report.json'
        load_cli().main([shapes_data['val'], str(res), '--out', str(out)] + extra)
        reports[name] = json.loads(out.read_text())
    ratios = image_occlusion_ratios(coco)
    for name in ('pkl', 'json_only'):
        report = reports[name]
        assert report['overall']['num_images'] == 4
        assert sum(b['num_images'] for b in report['buckets']) == 4
        assert report['overall']['num_instances'] == sum(ratios[i][1] for i in subset)
        ref = evaluate_by_occlusion(coco, load_results(coco, json.loads(js.read_text())),
                                    'bbox', img_ids=subset)
        assert [b['AP'] for b in report['buckets']] == [b['AP'] for b in ref['buckets']]
        assert report['overall']['AP'] == ref['overall']['AP']
        assert report['overall']['AP'] == pytest.approx(1.0)  # every object of the 4 found
    assert reports['json']['overall']['num_images'] == 10
    assert reports['json']['overall']['AP'] < 0.7  # the 6 other images' objects are misses
