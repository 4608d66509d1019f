"""A damaged or malicious checkpoint is one clear error on every path that loads one (mmengine's
``load_checkpoint``, ``Runner`` ``load_from`` and ``resume``, ``init_cfg`` Pretrained and
``tools/train.py --resume``), and torch's advice to switch ``weights_only`` off never shows."""
import os
import os.path as osp
import re
import shutil

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn

import plugin  # noqa: F401  (applies the fix)
from conftest import DEMO_CFG, data_options, load_tool
from plugin.utils import CheckpointError

UNSAFE = 'weights_only=False'


class ToyModel(BaseModel):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=out.square().mean()) if mode == 'loss' else out


def toy_runner(work_dir, **kwargs):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=osp.basename(work_dir),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2) * i) for i in range(4)],
                              sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=1), default_scope='mmengine',
        default_hooks=dict(logger=None, checkpoint=dict(type='CheckpointHook', interval=1)),
        **kwargs)


class Payload:
    """Unpickling calls ``call(*args)``: what a malicious checkpoint does."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """``{kind: path}``: a real mmengine checkpoint and five files that are not checkpoints."""
    root = tmp_path_factory.mktemp('ckpts')
    toy_runner(root / 'train').train()
    real = str(root / 'train' / 'epoch_1.pth')
    out = dict(real=real)
    out['empty'] = str(root / 'empty.pth')
    open(out['empty'], 'wb').close()
    out['text'] = str(root / 'text.pth')
    with open(out['text'], 'w') as f:
        f.write('this is not a checkpoint\n')
    out['truncated'] = str(root / 'truncated.pth')
    with open(real, 'rb') as f:
        data = f.read()
    with open(out['truncated'], 'wb') as f:
        f.write(data[:len(data) // 2])
    marker = str(root / 'PWNED')
    for kind, payload in [('os.system', Payload(os.system, f'touch {marker}')),
                          ('shutil', Payload(shutil.copyfile, out['text'], marker))]:
        out[kind] = str(root / f'{kind}.pth')
        torch.save(dict(state_dict=ToyModel().state_dict(), meta=payload), out[kind])
    out['marker'] = marker
    return out


EXPECTED = {
    'empty': 'not a checkpoint: {path} (empty)',
    'text': 'not a checkpoint: {path} (not a torch file)',
    'truncated': 'not a checkpoint: {path} (truncated)',
    'os.system': 'refused checkpoint: {path} holds the global posix.system,',
    'shutil': 'refused checkpoint: {path} holds the global shutil.copyfile,',
}
KINDS = sorted(EXPECTED)


def check(err, files, kind):
    message = str(err.value)
    assert message.startswith(EXPECTED[kind].format(path=files[kind])), message
    assert UNSAFE not in message and err.value.__cause__ is None
    assert err.value.__suppress_context__  # no chained torch message below it
    assert not osp.exists(files['marker'])


@pytest.mark.parametrize('kind', KINDS)
def test_load_checkpoint(files, kind):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(ToyModel(), files[kind], map_location='cpu')
    check(err, files, kind)


@pytest.mark.parametrize('kind', KINDS)
def test_pretrained_init_cfg(files, kind):
    model = ToyModel(init_cfg=dict(type='Pretrained', checkpoint=files[kind]))
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    check(err, files, kind)


@pytest.mark.parametrize('resume', [False, True], ids=['load_from', 'resume'])
@pytest.mark.parametrize('kind', KINDS)
def test_runner_load_from_and_resume(files, kind, resume, tmp_path):
    runner = toy_runner(tmp_path / f'{kind}-{resume}', load_from=files[kind], resume=resume)
    with pytest.raises(CheckpointError) as err:
        runner.train()
    check(err, files, kind)


def test_a_real_checkpoint_still_resumes(files, tmp_path):
    runner = toy_runner(tmp_path / 'resumed', load_from=files['real'], resume=True)
    runner.train()
    assert runner.epoch == 1  # resumed at the end of epoch 1 of 1: nothing left to train
    assert load_checkpoint(ToyModel(), files['real'])['meta']['epoch'] == 1


def test_a_legacy_torch_file_is_no_damage(tmp_path):
    """A checkpoint in torch's pre-1.6 (non-zip) format loads; cut short, it is 'truncated'."""
    path = str(tmp_path / 'legacy.pth')
    torch.save(dict(state_dict=ToyModel().state_dict()), path,
               _use_new_zipfile_serialization=False)
    assert set(load_checkpoint(ToyModel(), path)) == {'state_dict'}
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=rf'not a checkpoint: {re.escape(path)} '
                       r'\(truncated\)'):
        load_checkpoint(ToyModel(), path)


@pytest.mark.parametrize('kind', ['empty', 'os.system'])
def test_train_py_resume_says_one_line(files, kind, shapes_data, tmp_path, capsys):
    """What a user sees: ``tools/train.py CONFIG --resume PATH`` exits with one error line."""
    ckpt = str(tmp_path / 'ckpt.pth')
    shutil.copy(files[kind], ckpt)
    train = load_tool('tools/train.py')
    with pytest.raises(SystemExit) as exit_:
        train.main([DEMO_CFG, '--work-dir', str(tmp_path / 'work'), '--resume', ckpt,
                    '--cfg-options', *data_options(shapes_data['root'])])
    assert str(exit_.value.code).startswith('error: ' + EXPECTED[kind].format(path=ckpt))
    assert UNSAFE not in str(exit_.value.code) + capsys.readouterr().err
    assert not osp.exists(files['marker'])
