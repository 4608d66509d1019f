"""Results pkls are read without running code: a malicious pkl is refused before anything of it
runs, naming the global it asked for; a pkl of mmdet's DumpDetResults (tools/test.py --out)
still loads and gives the numbers of the same detections as a results json."""
import io
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from conftest import load_tool
from synthetic import synthetic_detections
from plugin.evaluation.occlusion import AP_NAMES
from plugin.evaluation.results_io import load_gt
from plugin.utils.safe_pickle import ForbiddenGlobalError, loads


class Shell:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class Eval:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return eval, (f'open({self.marker!r}, "w")',)


class StorageWithShell:
    """A tensor storage whose inner torch.save payload runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        buf = io.BytesIO()
        torch.save(Shell(self.marker), buf, _use_new_zipfile_serialization=False)
        return torch.storage._load_from_bytes, (buf.getvalue(),)


def cli_error(*args):
    with pytest.raises(SystemExit) as exc:
        load_tool('tools/analysis/occlusion_eval.py').main(list(args))
    return str(exc.value.code)


@pytest.mark.parametrize('payload, name', [
    (Shell, f'{os.system.__module__}.system'),
    (Eval, 'builtins.eval'),
    (StorageWithShell, f'{os.system.__module__}.system'),
])
@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pkl_is_refused_and_not_run(shapes_data, tmp_path, payload, name, protocol):
    marker = tmp_path / 'marker'
    pkl = tmp_path / 'results.pkl'
    pkl.write_bytes(pickle.dumps(
        [dict(img_id=1, pred_instances=dict(bboxes=payload(marker)))], protocol=protocol))
    msg = cli_error(shapes_data['val'], str(pkl))
    assert not marker.exists()
    assert len(msg.splitlines()) == 1 and msg.startswith('occlusion_eval: error:'), msg
    assert f'forbidden global {name}' in msg and str(pkl) in msg, msg
    with pytest.raises(ForbiddenGlobalError, match=f'forbidden global {name}'):
        loads(pkl.read_bytes())
    assert not marker.exists()


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_what_a_results_pkl_holds_loads(protocol):
    sample = dict(img_id=3, img_path='a/b.png', ori_shape=(96, 80), scale_factor=(1.0, 1.0),
                  homography_matrix=np.eye(3, dtype=np.float32), flip=False, empty=b'',
                  score=np.float32(0.5), count=np.int64(7), ids={1, 2},
                  pred_instances=dict(bboxes=torch.rand(2, 4), scores=torch.rand(2).half(),
                                      labels=torch.tensor([0, 2]), view=torch.arange(6.)[2:],
                                      masks=[dict(size=[96, 80], counts=b'PX1')]))
    out = loads(pickle.dumps([sample], protocol=protocol))[0]
    assert out.keys() == sample.keys()
    for key in ('bboxes', 'scores', 'labels', 'view'):
        got, ref = out['pred_instances'][key], sample['pred_instances'][key]
        assert got.dtype == ref.dtype and torch.equal(got, ref)
    assert out['pred_instances']['masks'] == sample['pred_instances']['masks']
    np.testing.assert_array_equal(out['homography_matrix'], sample['homography_matrix'])
    assert out['score'].dtype == np.float32 and out['count'] == 7 and out['ids'] == {1, 2}
    assert out['empty'] == b'' and out['ori_shape'] == (96, 80)


def dump_det_results(coco, dets, root, path):
    """What tools/test.py --out writes: mmdet's DumpDetResults over DetDataSample dicts."""
    from mmdet.evaluation import DumpDetResults
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    cat_ids = sorted(coco.getCatIds())
    samples = []
    for img in coco.dataset['images']:
        mine = [d for d in dets if d['image_id'] == img['id']]
        sample = DetDataSample(metainfo=dict(
            img_id=img['id'], img_path=osp.join(root, 'images', 'val', img['file_name']),
            ori_shape=(img['height'], img['width']), img_shape=(img['height'], img['width']),
            scale_factor=(1.0, 1.0)))
        boxes = torch.from_numpy(
            np.array([mask_utils.toBbox(d['segmentation']) for d in mine]).reshape(-1, 4))
        boxes[:, 2:] += boxes[:, :2]
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=torch.tensor([d['score'] for d in mine]),
            labels=torch.tensor([cat_ids.index(d['category_id']) for d in mine]),
            masks=torch.from_numpy(np.stack(
                [mask_utils.decode(d['segmentation']) for d in mine]
                or np.zeros((0, img['height'], img['width']), np.uint8)).astype(bool)))
        samples.append(sample.to_dict())
    dump = DumpDetResults(out_file_path=str(path))
    dump.process({}, samples)
    dump.evaluate(len(samples))


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_pkl_of_dump_det_results_loads(shapes_data, tmp_path, iou_type):
    coco = load_gt(shapes_data['val'])
    dets = synthetic_detections(coco, 'segm', seed=4)
    pkl = tmp_path / 'results.pkl'
    dump_det_results(coco, dets, shapes_data['root'], pkl)
    assert b'torch._utils' in pkl.read_bytes()  # tensors as torch pickles them, not numpy
    js = tmp_path / 'results.json'
    boxes = [dict(d, bbox=list(mask_utils.toBbox(d['segmentation']))) for d in dets]
    js.write_text(json.dumps(boxes if iou_type == 'bbox' else dets))
    reports = []
    for res in (pkl, js):
        out = tmp_path / f'{res.suffix[1:]}.report.json'
        load_tool('tools/analysis/occlusion_eval.py').main(
            [shapes_data['val'], str(res), '--iou-type', iou_type, '--out', str(out)])
        reports.append(json.loads(out.read_text()))
    for a, b in zip(reports[0]['buckets'] + [reports[0]['overall']],
                    reports[1]['buckets'] + [reports[1]['overall']]):
        assert a['num_images'] == b['num_images']
        assert [a[k] for k in AP_NAMES] == pytest.approx([b[k] for k in AP_NAMES], abs=1e-6)
    assert 0 < reports[0]['overall']['AP'] < 1
