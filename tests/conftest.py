import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG = osp.join(ROOT, 'configs', 'demo', 'retinanet_tiedresnet-tiny_fpn_1x_occshapes.py')
NO_CUDA = 'no CUDA device (torch.cuda.is_available() is False)'


def pytest_configure(config):
    config.addinivalue_line('markers', 'cuda: runs on a CUDA device (skipped without one); '
                            'tools/gpu_check.sh runs them with -m cuda')


def cuda_available():
    import torch
    return torch.cuda.is_available()


@pytest.fixture(params=['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def device(request):
    """Every device of this machine: 'cpu' always, 'cuda' when there is one (else skipped)."""
    import torch
    if request.param == 'cuda' and not cuda_available():
        pytest.skip(NO_CUDA)
    return torch.device(request.param)


def autocast_dtype(device):
    """The autocast dtype AMP training uses on ``device``: fp16 on CUDA, bf16 on CPU."""
    import torch
    return torch.float16 if device.type == 'cuda' else torch.bfloat16


@pytest.fixture(scope='session')
def shapes_data(tmp_path_factory):
    """A small occlusion-shapes set: 24 train / 10 val images of 96x96 (2 per bucket and more)."""
    from plugin.datasets.occlusion_shapes import make_dataset
    out = str(tmp_path_factory.mktemp('occlusion_shapes'))
    paths = make_dataset(out, num_train=24, num_val=10, size=96, seed=3)
    return dict(root=out, **paths)


def data_options(root, max_epochs=1, batch_size=4):
    """--cfg-options that point an occlusion-shapes config at ``root`` and make it tiny."""
    root = root.rstrip('/') + '/'
    opts = [f'train_cfg.max_epochs={max_epochs}', f'train_cfg.val_interval={max_epochs}',
            f'train_dataloader.batch_size={batch_size}', f'val_dataloader.batch_size={batch_size}',
            f'test_dataloader.batch_size={batch_size}',
            f'val_evaluator.ann_file={root}annotations/instances_val.json',
            f'test_evaluator.ann_file={root}annotations/instances_val.json',
            'default_hooks.logger.interval=1', 'param_scheduler.0.end=2']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.append(f'{loader}.dataset.data_root={root}')
    return opts


def run_tool(args, timeout=600, env=None, cwd=ROOT):
    """Run a command (python scripts get this interpreter); fail with its output if it fails."""
    if args[0].endswith('.py'):
        args = [sys.executable] + list(args)
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    full_env.update(env or {})
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited {proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


def load_tool(relative):
    """A script under tools/ as a module (its functions, without running its main)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(osp.basename(relative)[:-3],
                                                  osp.join(ROOT, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_plugin_config(path):
    """``(cfg, scope)`` of a config of ours, checked for what every one promises: it imports the
    plugin and, for mmdet, rides the occlusion evaluation along."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    assert 'plugin' in cfg.custom_imports['imports']
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmdet':
        assert 'OcclusionEvalHook' in [h['type'] for h in cfg.custom_hooks]
    return cfg, scope


def tensor_forward(model, scope, size=64, seed=0):
    """The tensors of ``model(x, samples, mode='tensor')`` for one random ``size``x``size`` image
    (no grad); ``scope`` picks mmdet's or mmseg's data sample."""
    import torch

    from plugin.analysis import empty_data_samples
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = model(x, empty_data_samples(scope, (size, size)), mode='tensor')
    return [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
