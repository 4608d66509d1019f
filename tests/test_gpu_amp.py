"""Mixed precision end to end: ``tools/train.py CONFIG --amp`` (fp16, mmengine's AmpOptimWrapper)
trains one tiny config of every family on CUDA; without CUDA it refuses in one line."""
import glob
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch

from conftest import NO_CUDA, ROOT, data_options, load_tool, run_tool

pytestmark = pytest.mark.e2e
TRAIN = osp.join(ROOT, 'tools', 'train.py')
CONFIGS = {  # one tiny occlusion-shapes config per family
    'tbc': 'configs/demo/retinanet_tiedresnet-tiny_fpn_1x_occshapes.py',
    'drconv': 'configs/drconv/retinanet_dr-r18-tiny_fpn_1x_occshapes.py',
    'dsc': 'configs/dsc/retinanet_dsc-r18-tiny_fpn_1x_occshapes.py',
    'sk': 'configs/sk/retinanet_r18-tiny_sk-fpn_1x_occshapes.py',
}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize('family', CONFIGS)
def test_amp_training_on_cuda(family, shapes_data, tmp_path):
    """One epoch (6 iterations) and a validation with fp16 autocast and a dynamic loss scale."""
    work_dir = str(tmp_path)
    run_tool([TRAIN, osp.join(ROOT, CONFIGS[family]), '--amp', '--work-dir', work_dir,
              '--cfg-options', *data_options(shapes_data['root']),
              'model.test_cfg.score_thr=0'])
    (log,) = glob.glob(osp.join(work_dir, '*', '*.log'))
    text = open(log).read()
    assert "type='AmpOptimWrapper'" in text and 'CUDA available: True' in text
    (scalars,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    lines = [json.loads(line) for line in open(scalars)]
    losses = [s['loss'] for s in lines if 'loss' in s]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert any('coco/bbox_mAP' in s for s in lines)
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA: AMP runs above')
def test_amp_without_cuda_refuses_in_one_line():
    train = load_tool('tools/train.py')
    with pytest.raises(SystemExit, match='--amp needs a CUDA device'):
        train.main([osp.join(ROOT, CONFIGS['tbc']), '--amp'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_gpu_check_without_cuda_writes_a_report_and_fails(tmp_path):
    out = tmp_path / 'gpu_check'
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'gpu_check.sh'), str(out)],
                          env=dict(PATH='/usr/bin:/bin', PYTHON=sys.executable),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'no usable CUDA device' in proc.stderr
    report = (out / 'report.md').read_text()
    assert report.startswith('# GPU check: no usable CUDA device')
    assert f'torch {torch.__version__}' in report and 'CUDA available: False' in report
