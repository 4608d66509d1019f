"""The measurements the benchmarks share (tools/benchmark/timing.py)."""
import time

import pytest
import torch
from torch import nn

from conftest import load_tool

timing = load_tool('tools/benchmark/timing.py')
saved_activation_mb, timed_in_turns = timing.saved_activation_mb, timing.timed_in_turns


def test_timed_in_turns_runs_the_functions_in_turn_and_takes_medians():
    calls = []
    fns = [lambda: calls.append('a'), lambda: (calls.append('b'), time.sleep(0.02))]
    ms = timed_in_turns(fns, 'cpu', repeat=3, warmup=1)
    assert calls == ['a', 'b'] * 4
    assert len(ms) == 2 and ms[1] >= 20 > ms[0]


class Probe(nn.Module):
    """``x * w``; records its mode, whether grad is on, and the gradient its output receives."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.calls, self.grads = [], []

    def forward(self, x):
        y = x * self.w
        self.calls.append((self.training, torch.is_grad_enabled()))
        if y.requires_grad:
            y.register_hook(lambda g: self.grads.append(g.clone()))
        return y


@pytest.mark.parametrize('grad', [None, torch.tensor([1., 2., 3.])])
def test_timed_steps_train_step_backprops_and_drops_gradients(grad):
    probes = [Probe(), Probe().eval()]
    ms = timing.timed_steps(probes, torch.ones(3), 'cpu', repeat=2, warmup=1, train=True,
                            grad=grad)
    assert len(ms) == 2
    expected = torch.full((3, ), 1 / 3) if grad is None else grad  # the output's mean, or grad
    for probe in probes:
        assert probe.calls == [(True, True)] * 3 and probe.w.grad is None
        assert all(torch.equal(g, expected) for g in probe.grads) and len(probe.grads) == 3


def test_timed_steps_inference_runs_in_eval_mode_without_grad():
    probes = [Probe(), Probe()]
    timing.timed_steps(probes, torch.ones(3), 'cpu', repeat=1, warmup=0, train=False)
    assert all(probe.calls == [(False, False)] and not probe.grads for probe in probes)


def test_saved_activation_mb_counts_saved_activations_not_parameters():
    linear = nn.Linear(256, 256, bias=False)  # keeps its input (1 MiB) and its weight
    x = torch.randn(1024, 256, requires_grad=True)
    assert saved_activation_mb(linear, x) == 1.0
    linear_relu = nn.Sequential(nn.Linear(256, 256, bias=False), nn.ReLU())
    assert saved_activation_mb(linear_relu, x) == 2.0  # + the ReLU's output


def test_run_all_writes_one_table_with_a_ratio_per_row(tmp_path):
    import os.path as osp

    from conftest import ROOT, run_tool
    out = str(tmp_path / 'bench.md')
    run_tool([osp.join(ROOT, 'tools', 'benchmark', 'run_all.py'), '--size', '32', '--repeat', '1',
              '--warmup', '0', '--only', 'TBC', 'DSC 3x3', '--out', out])
    rows = [line for line in open(out) if line.startswith('| ') and '**' in line]
    assert [r.split(' | ')[0] for r in rows] == ['| TBC 3x3 256->256, B=4',
                                                 '| DSC 3x3 256->256, stride 2']
    for row in rows:
        cells = row.strip(' |\n').split(' | ')
        train, base, ratio = float(cells[3]), float(cells[4]), float(cells[5].strip('*'))
        low, high = (train - 0.05) / (base + 0.05), (train + 0.05) / (base - 0.05)  # ms to 0.05
        assert low - 0.005 <= ratio <= high + 0.005
