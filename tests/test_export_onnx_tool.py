"""tools/deployment: a tiny RetinaNet and a tiny Mask R-CNN in onnxruntime against PyTorch (raw
outputs at two sizes), the end-to-end detectors against mmdet's predict(), and the CLI's exit
codes and one-line errors."""
import os.path as osp

import numpy as np
import pytest
import torch
from torch import nn

from conftest import ROOT, load_tool

pytest.importorskip('onnxruntime')
STUDY = osp.join(ROOT, 'configs', 'study')
CONFIGS = dict(retinanet=osp.join(STUDY, 'retinanet_tiedresnet14-tiny_fpn_occshapes.py'),
               mask_rcnn=osp.join(STUDY, 'mask-rcnn_r18-tiny_fpn_occshapes.py'))
graphs = load_tool('tools/deployment/onnx_graphs.py')
tool = load_tool('tools/deployment/export_onnx.py')


@pytest.fixture(scope='module')
def image(shapes_data):
    return osp.join(shapes_data['root'], 'images', 'val', '000001.png')


def spread_scores(model: nn.Module) -> nn.Module:
    """Scores of an untrained head sit at its prior (RetinaNet: 0.01, below score_thr) or
    near-tie; scatter the classifiers' weights so there are detections with distinct scores."""
    gen = torch.Generator().manual_seed(0)
    for name, module in model.named_modules():
        if name.split('.')[-1] in ('retina_cls', 'rpn_cls', 'fc_cls'):
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * 0.5
            module.bias.data = torch.randn(module.bias.shape, generator=gen)
    return model


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def detector(request):
    return request.param, spread_scores(tool.load_model(CONFIGS[request.param]))


def test_raw_outputs_match_at_two_sizes(detector, image, tmp_path):
    """Dynamic export: 1x3x64x64 and 2x3x96x128 (another batch, another size) <= 1e-4."""
    from plugin.deployment import export_onnx, max_abs_diff, run_onnxruntime
    _, model = detector
    graph = graphs.RawOutputs(model).eval()
    x = tool.image_input(model, image, (64, 64))
    path = export_onnx(graph, x, tmp_path / 'raw.onnx', dynamic=True)
    for inputs in (x, tool.image_input(model, image, (96, 128), batch=2)):
        with torch.no_grad():
            expected = graph(inputs)
        assert len(expected) == 10  # cls scores and box deltas (RPN's for Mask R-CNN), 5 levels
        assert max_abs_diff(expected, run_onnxruntime(path, inputs)) <= 1e-4


def predictions(model, x):
    """mmdet's predict() of one unscaled image: boxes, scores, labels[, masks]."""
    from plugin.analysis import empty_data_samples
    with torch.no_grad():
        (pred, ) = model.predict(x, empty_data_samples('mmdet', x.shape[-2:]))
    return pred.pred_instances


def test_end2end_equals_mmdet_predict(detector, image, tmp_path):
    """dets/labels[/masks] of the exported detector in onnxruntime = predict()'s detections:
    boxes within 1e-3, same labels; pasted masks within a pixel in a thousand."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask

    from plugin.deployment import export_onnx, run_onnxruntime
    name, model = detector
    graph = graphs.end2end(model).eval()
    x = tool.image_input(model, image, (96, 96))
    ref = predictions(model, x)
    assert len(ref.bboxes) >= 10  # enough to compare
    path = export_onnx(graph, x, tmp_path / 'end2end.onnx',
                       output_names=graphs.output_names(graph, 3 if name == 'mask_rcnn' else 2))
    with torch.no_grad():
        eager = graph(x)
    for outputs in (eager, run_onnxruntime(path, x)):
        dets, labels = (torch.as_tensor(np.asarray(o)) for o in outputs[:2])
        assert dets.shape == (len(ref.bboxes), 5)
        torch.testing.assert_close(dets[:, :4], ref.bboxes, atol=1e-3, rtol=0)
        torch.testing.assert_close(dets[:, 4], ref.scores, atol=1e-4, rtol=0)
        assert labels.tolist() == ref.labels.tolist()
        if name == 'mask_rcnn':
            probs = torch.as_tensor(np.asarray(outputs[2]))
            pasted, _ = _do_paste_mask(probs[:, None], dets[:, :4], 96, 96, skip_empty=False)
            differ = ((pasted >= 0.5) != ref.masks).float().mean().item()
            assert differ <= 1e-3, differ


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of export_onnx.py's main (in-process: saves a start-up)."""
    try:
        tool.main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_verify_dynamic_and_checkpoint(image, tmp_path, capsys, monkeypatch):
    model = spread_scores(tool.load_model(CONFIGS['retinanet']))  # not the initial weights
    ckpt = tmp_path / 'w.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    out = tmp_path / 'r.onnx'
    code, stdout, err = run_cli(capsys, CONFIGS['retinanet'], ckpt, '--shape', 64, 96, '--out',
                                out, '--dynamic', '--verify', '--image', image)
    assert code == 0 and out.is_file(), err
    assert 'raw outputs, 10 outputs' in stdout
    assert '1x3x64x96: max abs diff' in stdout and '2x3x128x128: max abs diff' in stdout
    loaded = tool.load_model(CONFIGS['retinanet'], str(ckpt))
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())

    monkeypatch.setattr(tool, 'compare', lambda *args: (2e-4, 1.))
    code, _, err = run_cli(capsys, CONFIGS['retinanet'], '--shape', 64, 64, '--out', out,
                           '--verify', '--image', image)
    assert code == 1 and 'verify failed: max abs diff 0.0002 > 0.0001' in err


def test_cli_deploy_cfg(image, tmp_path, capsys):
    """Settings from an mmdeploy-style config, a flag overriding its shape; unknown keys refused."""
    deploy = osp.join(ROOT, 'tools', 'deployment', 'configs',
                      'detection_onnxruntime_static-320x320.py')
    code, stdout, err = run_cli(capsys, CONFIGS['retinanet'], '--deploy-cfg', deploy, '--shape',
                                64, 64, '--out', tmp_path / 'd.onnx', '--image', image, '--verify')
    assert code == 0, err
    assert 'end-to-end detector, 2 outputs, opset 17, static input 1x3x64x64' in stdout
    bad = tmp_path / 'bad.py'
    bad.write_text('onnx_config = dict(opset_version=11)\n')
    code, _, err = run_cli(capsys, CONFIGS['retinanet'], '--deploy-cfg', bad, '--out',
                           tmp_path / 'b.onnx')
    assert code == 2 and "onnx_config keys ['opset_version'] are not among" in err


@pytest.mark.parametrize('args, message', [
    (['missing.py', '--shape', 64, 64], 'config not found: missing.py'),
    ([CONFIGS['retinanet'], 'missing.pth', '--shape', 64, 64], 'checkpoint not found'),
    ([CONFIGS['retinanet'], '--shape', 64, 64, '--opset', 9], '--opset 9 is not supported'),
    ([CONFIGS['retinanet'], '--shape', 64, 64, '--image', 'none.png'], 'image not found'),
    ([CONFIGS['retinanet']], '--shape H W is required'),
    ([CONFIGS['retinanet'], '--shape', 64, 64, '--end2end', '--dynamic'], 'fixed size'),
    ([CONFIGS['retinanet'], '--shape', 50, 64], 'pads it to 64x64'),
    ([osp.join(ROOT, 'configs', 'demo', 'fcn_r18-tiny-d8_occshapes-seg.py'), '--shape', 64, 64,
      '--end2end'], '--end2end is for mmdet detectors'),
])
def test_cli_bad_input_is_one_line(args, message, image, tmp_path, capsys):
    if '--image' not in args:
        args = args + ['--image', image]
    code, _, err = run_cli(capsys, *args, '--out', tmp_path / 'm.onnx')
    ours = [line for line in err.splitlines() if line.startswith('export_onnx')]  # not warnings
    assert code == 2 and ours == err.splitlines()[-1:] and message in ours[0], err
    assert not (tmp_path / 'm.onnx').exists()


def test_cli_unreadable_image_is_one_line(tmp_path, capsys):
    bad = tmp_path / 'bad.png'
    bad.write_text('not an image')
    code, _, err = run_cli(capsys, CONFIGS['retinanet'], '--shape', 64, 64, '--image', bad,
                           '--out', tmp_path / 'm.onnx')
    assert code == 2 and err.splitlines()[-1] == (f'export_onnx: error: image {bad}: not an '
                                                  'image file mmcv can read')
