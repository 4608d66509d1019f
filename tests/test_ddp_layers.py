"""Every conv layer of the plugin trains under DistributedDataParallel with two gloo processes on
CPU: every parameter gets a gradient (DDP without ``find_unused_parameters`` raises on the next
step otherwise), gradients are averaged across ranks, and the replicas stay identical.

The workers run in their own process group (``tests/ddp_layers_worker.py``) under a deadline: a
stuck worker fails the test, it cannot hang the suite."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from ddp_layers_worker import LAYERS, batch, make_model

DEADLINE_S = 300


@pytest.fixture(scope='module')
def ddp_results(tmp_path_factory):
    """``{(layer, rank): (parameters after 3 steps, first-step gradients)}``."""
    out = str(tmp_path_factory.mktemp('ddp'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, osp.join(ROOT, 'tests', 'ddp_layers_worker.py'), out],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too: they share the session
        output, _ = proc.communicate()
        pytest.fail(f'the DDP workers did not finish within {DEADLINE_S} s:\n{output[-4000:]}')
    assert proc.returncode == 0, f'a DDP worker failed:\n{output[-4000:]}'
    results = {}
    for rank in range(2):
        for name, value in torch.load(osp.join(out, f'rank{rank}.pt')).items():
            results[name, rank] = value
    return results


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_layer_trains_under_ddp_with_gloo(ddp_results, name):
    (params0, grads0), (params1, grads1) = ddp_results[name, 0], ddp_results[name, 1]
    assert all(g is not None for g in grads0 + grads1)  # every parameter had a gradient
    for a, b in zip(grads0, grads1):  # all-reduced: the same average on both ranks
        torch.testing.assert_close(a, b)
    for a, b in zip(params0, params1):
        torch.testing.assert_close(a, b)
    # the averaged gradient is that of both ranks' data together (mean of the two local losses)
    model = make_model(name)
    loss = sum(model(batch(rank, 0)).square().mean() for rank in range(2)) / 2
    loss.backward()
    for p, g in zip(model.parameters(), grads0):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
