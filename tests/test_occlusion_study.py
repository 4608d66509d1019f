"""tools/study/occlusion_study.py: mean and spread over seeds, the table, recorded runs, a tiny
real study."""
import argparse
import json
import os.path as osp

import pytest

from conftest import ROOT, load_tool, run_tool

STUDY = 'tools/study/occlusion_study.py'


@pytest.fixture(scope='module')
def study():
    return load_tool(STUDY)


def fake_run(config, seed, overall, buckets, iou_types=('bbox', )):
    detector, backbone = osp.basename(config)[:-3].split('_')[:2]
    report = dict(overall=dict(AP=overall),
                  buckets=[dict(name=f'b{k}', num_images=10 + k, AP=ap)
                           for k, ap in enumerate(buckets)])
    return dict(config=config, detector=detector, backbone=backbone, seed=seed, epochs=3,
                seconds=10.0 * (seed + 1), reports={t: report for t in iou_types})


def test_aggregate_mean_sample_std_and_undefined_buckets(study):
    runs = [fake_run('c/retinanet_a_fpn.py', 1, 0.30, [0.5, None]),
            fake_run('c/retinanet_a_fpn.py', 0, 0.20, [0.3, 0.1]),
            fake_run('c/mask-rcnn_b_fpn.py', 0, 0.40, [0.2, 0.2], ('bbox', 'segm'))]
    rows = {(r['config'], r['iou_type']): r for r in study.aggregate(runs)}
    assert set(rows) == {('c/retinanet_a_fpn.py', 'bbox'), ('c/mask-rcnn_b_fpn.py', 'bbox'),
                         ('c/mask-rcnn_b_fpn.py', 'segm')}
    a = rows['c/retinanet_a_fpn.py', 'bbox']
    assert a['seeds'] == [0, 1] and a['per_seed'] == [0.20, 0.30]
    assert a['mean'] == pytest.approx(0.25) and a['std'] == pytest.approx(0.0707107, abs=1e-6)
    assert a['buckets'][0]['mean'] == pytest.approx(0.4)
    assert a['buckets'][0]['std'] == pytest.approx(0.1414214, abs=1e-6)
    assert a['buckets'][1]['mean'] is None  # one seed has no AP there: no mean pretends to
    assert a['seconds'] == pytest.approx(15.0) and a['epochs'] == 3
    b = rows['c/mask-rcnn_b_fpn.py', 'segm']
    assert (b['mean'], b['std'], b['backbone']) == (0.40, 0.0, 'b')

    sizes = {c: dict(backbone_params=7e5, backbone_flops=2e8) for c in
             ('c/retinanet_a_fpn.py', 'c/mask-rcnn_b_fpn.py')}
    table = study.format_table(list(rows.values()), sizes).splitlines()
    assert table[0].endswith('| AP all | r b0 (10 img) | r b1 (11 img) |')
    assert [line.split(' | ')[:3] for line in table[2:]] == [
        ['| mask-rcnn', 'bbox', 'b'], ['| mask-rcnn', 'segm', 'b'], ['| retinanet', 'bbox', 'a']]
    assert table[-1].endswith('| 0.70 | 0.20 | 3 | 0, 1 | 15 | 25.0 ± 7.1 | 40.0 ± 14.1 | - |')


def usage_error(study, capsys, *args):
    with pytest.raises(SystemExit) as exc:
        study.parse_args(list(args))
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize('args, name', [(['--seeds', '0', '0'], '--seeds'),
                                        (['--jobs', '0'], '--jobs'),
                                        (['--configs', 'nope.py'], '--configs'),
                                        (['--runs-from', 'nope.json'], '--runs-from')])
def test_bad_arguments_name_the_option(study, capsys, args, name):
    assert name in usage_error(study, capsys, *args)


def test_page_without_markers_is_refused(study, capsys, tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# no markers\n')
    error = usage_error(study, capsys, '--page', str(page))
    assert '--page' in error and 'study:begin' in error


def test_recorded_runs_stand_in_only_for_unfinished_ones(study, monkeypatch):
    calls = []

    def train_one(config, seed, epochs, args, threads):
        calls.append((seed, args.no_train))
        return dict(fresh=seed) if seed == 0 else None  # seed 0 has finished in the work dir

    monkeypatch.setattr(study, 'train_one', train_one)
    config = osp.join(ROOT, 'configs/study/retinanet_a_fpn.py')
    recorded = {('configs/study/retinanet_a_fpn.py', s): dict(recorded=s) for s in (0, 1)}
    args = argparse.Namespace(work_dir='w', data='d', no_train=False)
    assert study.train_or_reuse(config, 0, 8, args, 1, recorded) == dict(fresh=0)
    assert study.train_or_reuse(config, 1, 8, args, 1, recorded) == dict(recorded=1)
    assert study.train_or_reuse(config, 2, 8, args, 1, recorded) is None
    assert calls == [(0, True), (1, True), (2, False)]  # only the unrecorded run may train
    assert args.no_train is False
    runs = [dict(fresh=0), recorded[('configs/study/retinanet_a_fpn.py', 1)]]
    runs[0].update(config='configs/study/retinanet_a_fpn.py', seed=0)
    runs[1].update(config='configs/study/retinanet_a_fpn.py', seed=1)
    note = study.taken_note(runs, recorded, osp.join(ROOT, 'docs/study/occlusion_study.json'))
    assert note == ('\nTaken from the runs recorded in `docs/study/occlusion_study.json`, not '
                    'trained again: `retinanet_a_fpn` seed 1.\n')
    assert study.taken_note(runs[:1], recorded, 'x.json') == ''


@pytest.mark.e2e
def test_tiny_study_trains_two_seeds_writes_table_and_reuses_runs(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Study\n\n<!-- study:begin -->\nold\n<!-- study:end -->\n\nDiscussion.\n')
    args = [STUDY, '--configs', osp.join(ROOT, 'configs/study/retinanet_r18-tiny_fpn_occshapes.py'),
            '--seeds', '0', '1', '--epochs', '1', '--jobs', '2', '--data', str(tmp_path / 'data'),
            '--num-train', '8', '--num-val', '4', '--work-dir', str(tmp_path / 'work'),
            '--out', str(tmp_path / 'out'), '--page', str(page)]
    run_tool(args, timeout=600)
    with open(tmp_path / 'out' / 'occlusion_study.json') as f:
        result = json.load(f)
    assert sorted(r['seed'] for r in result['runs']) == [0, 1]
    assert all(r['epochs'] == 1 and set(r['reports']) == {'bbox'} for r in result['runs'])
    assert (tmp_path / 'out' / 'occlusion_study.png').is_file()
    text = page.read_text()
    assert text.startswith('# Study\n\n<!-- study:begin -->\nCOCO AP x 100')
    assert '| retinanet | bbox | r18-tiny | 0.70 |' in text and 'old' not in text
    assert text.endswith('<!-- study:end -->\n\nDiscussion.\n')
    assert '](out/occlusion_study.png)' in text

    logs = [tmp_path / 'work' / 'retinanet_r18-tiny_fpn_occshapes' / f'seed{s}' /
            'study_train.log' for s in (0, 1)]
    stamps = [log.stat().st_mtime_ns for log in logs]
    run_tool(args, timeout=300)  # everything finished: nothing is trained again
    assert [log.stat().st_mtime_ns for log in logs] == stamps
    assert 'Not finished' not in page.read_text()

    seeds = args.index('--seeds')
    run_tool(args[:seeds + 1] + ['0', '1', '2'] + args[seeds + 3:] + ['--no-train'], timeout=300)
    assert not (logs[0].parent.parent / 'seed2').exists()
    text = page.read_text()
    assert 'Not finished yet (not in the table): `retinanet_r18-tiny_fpn_occshapes` seed 2.' in text
    row = next(line for line in text.splitlines() if line.startswith('| retinanet'))
    assert row.split(' | ')[5:7] == ['1', '0, 1']  # epochs, and the seeds that finished

    # another work dir without runs: the recorded ones fill the table, nothing trains
    recorded = tmp_path / 'recorded.json'
    recorded.write_text((tmp_path / 'out' / 'occlusion_study.json').read_text())
    work = args.index('--work-dir')
    run_tool(args[:work + 1] + [str(tmp_path / 'work2')] + args[work + 2:] +
             ['--runs-from', str(recorded)], timeout=300)
    assert not (tmp_path / 'work2' / 'retinanet_r18-tiny_fpn_occshapes').exists()
    text = page.read_text()
    assert 'not trained again: `retinanet_r18-tiny_fpn_occshapes` seed 0, ' in text
    assert row == next(line for line in text.splitlines() if line.startswith('| retinanet'))
