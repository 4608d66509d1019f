"""The occlusion study in miniature: AP per occlusion bucket of detectors that differ only in
their backbone, each trained with several seeds on the occlusion-shapes data (CPU).

    python tools/study/occlusion_study.py [--configs CFG ...] [--seeds 0 1] [--jobs 2]
        [--epochs N] [--data data/occlusion_shapes_study] [--work-dir work_dirs/study]
        [--out docs/study] [--page docs/occlusion_study.md] [--runs-from STUDY_JSON]

Every config (default: ``configs/study/*.py``, a RetinaNet and a Mask R-CNN for each backbone)
is trained once per seed through ``tools/train.py`` with the same budget (epochs, data, schedule);
the :class:`OcclusionEvalHook` of the config writes the final AP per occlusion bucket. A run
that already finished (its report exists) is reused, so an interrupted study continues where it
stopped; ``--runs-from`` takes the runs that have not finished in the work dir from an earlier
``occlusion_study.json`` (same config, seed and epochs), so a few configs can be rerun and the
table rebuilt with the others' recorded runs. The study writes ``{out}/occlusion_study.json``
(every run) and ``occlusion_study.png`` (AP against occlusion ratio, one line per backbone, one
panel per detector and IoU type), and puts the table (mean and spread over seeds, backbone size)
into ``--page`` between its ``<!-- study:begin -->`` and ``<!-- study:end -->`` lines (the
discussion around them is written by hand).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from plugin.analysis.complexity import config_complexity  # noqa: E402
from plugin.visualization import plot_occlusion_study  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+',
                        default=sorted(glob.glob(osp.join(ROOT, 'configs/study/*.py'))))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--epochs', type=int,
                        help="training budget of every run (default: each config's max_epochs)")
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once; each gets cpu_count // jobs threads')
    parser.add_argument('--data', default=osp.join(ROOT, 'data/occlusion_shapes_study'),
                        help='occlusion-shapes data; generated (--num-train/--num-val) if missing')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/study'))
    parser.add_argument('--out', default=osp.join(ROOT, 'docs/study'))
    parser.add_argument('--page', default=osp.join(ROOT, 'docs/occlusion_study.md'),
                        help='markdown page whose study:begin/end block receives the table')
    parser.add_argument('--size', type=int, default=256, help='image side for the FLOPs count')
    parser.add_argument('--no-train', action='store_true',
                        help='only gather the runs that have finished; the page names the others')
    parser.add_argument('--runs-from', metavar='STUDY_JSON',
                        help='runs that have not finished in --work-dir are taken from this '
                        'occlusion_study.json (same config, seed and epochs) instead of being '
                        'trained')
    args = parser.parse_args(argv)
    if args.runs_from and not osp.isfile(args.runs_from):
        parser.error(f'--runs-from: no such file: {args.runs_from}')
    if min(args.seeds, default=-1) < 0 or len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct non-negative integers, got {args.seeds}')
    if (args.epochs is not None and args.epochs < 1) or args.jobs < 1:
        parser.error('--epochs and --jobs must be at least 1')
    if args.page and len(split_page(args.page)) != 3:
        parser.error(f'--page {args.page} needs one {BEGIN!r} line and one {END!r} line after it')
    missing = [c for c in args.configs if not osp.isfile(c)]
    if missing:
        parser.error(f'--configs: no such file: {missing}')
    return args


BEGIN, END = '<!-- study:begin -->', '<!-- study:end -->'


def split_page(page: str, begin: str = BEGIN, end: str = END) -> list:
    """``[before, block, after]`` of the page around its ``begin``/``end`` marker lines (fewer
    parts if absent)."""
    if not osp.isfile(page):
        return []
    with open(page) as f:
        text = f.read()
    head, sep, rest = text.partition(begin + '\n')
    block, sep2, tail = rest.partition(end + '\n')
    return [head, block, tail] if sep and sep2 else []


def write_block(page: str, block: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what stands between the page's ``begin`` and ``end`` marker lines by ``block``."""
    head, _, tail = split_page(page, begin, end)
    with open(page, 'w') as f:
        f.write(f'{head}{begin}\n{block}{end}\n{tail}')
    print(f'table -> {page}')


def make_data(data: str, num_train: int, num_val: int) -> None:
    if osp.isfile(osp.join(data, 'annotations', 'instances_val.json')):
        return
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/dataset/make_occlusion_shapes.py'),
                    '--out', data, '--num-train', str(num_train), '--num-val', str(num_val),
                    '--size', '256', '--seed', '1'], check=True)


def split_name(config: str) -> tuple:
    """``'mask-rcnn_dr-r18-tiny_fpn_occshapes.py'`` -> ``('mask-rcnn', 'dr-r18-tiny')``."""
    detector, backbone = osp.basename(config)[:-3].split('_')[:2]
    return detector, backbone


def report_path(work_dir: str, epochs: int) -> str:
    return osp.join(work_dir, 'occlusion', f'val_epoch{epochs}.json')


def run_train(config: str, work_dir: str, options: List[str], threads: int, log_name: str) -> tuple:
    """Run ``tools/train.py config`` into ``work_dir`` with ``--cfg-options options`` on
    ``threads`` threads, its output in ``work_dir/log_name``; ``(exit status, seconds)``."""
    os.makedirs(work_dir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.time()
    with open(osp.join(work_dir, log_name), 'w') as log:
        proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/train.py'), config,
                               '--work-dir', work_dir, '--cfg-options', *options],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return proc.returncode, round(time.time() - start, 1)


def train_one(config: str, seed: int, epochs: int, args, threads: int) -> dict:
    """Train (or reuse) one run; returns its record with the final occlusion reports."""
    work_dir = osp.join(args.work_dir, osp.basename(config)[:-3], f'seed{seed}')
    report = report_path(work_dir, epochs)
    record_file = osp.join(work_dir, 'study_run.json')
    if osp.isfile(report) and osp.isfile(record_file):
        with open(record_file) as f:
            return json.load(f)
    if args.no_train:
        return None
    data = args.data.rstrip('/') + '/'
    options = [f'randomness.seed={seed}', f'train_cfg.max_epochs={epochs}',
               f'train_cfg.val_interval={epochs}',
               f'train_dataloader.dataset.data_root={data}',
               f'val_dataloader.dataset.data_root={data}',
               f'test_dataloader.dataset.data_root={data}',
               f'val_evaluator.ann_file={data}annotations/instances_val.json',
               f'test_evaluator.ann_file={data}annotations/instances_val.json']
    returncode, seconds = run_train(config, work_dir, options, threads, 'study_train.log')
    if returncode != 0 or not osp.isfile(report):
        raise RuntimeError(f'{config} seed {seed} failed (exit {returncode}): see '
                           f'{osp.join(work_dir, "study_train.log")}')
    with open(report) as f:
        reports = json.load(f)
    detector, backbone = split_name(config)
    record = dict(config=osp.relpath(config, ROOT), detector=detector, backbone=backbone,
                  seed=seed, epochs=epochs, threads=threads, seconds=seconds, reports=reports)
    with open(record_file, 'w') as f:
        json.dump(record, f)
    return record


def study_runs(path: str, configs: List[str], seeds: List[int], epochs: Dict[str, int]) -> dict:
    """``{(config, seed): run}`` of an occlusion_study.json for ``configs`` x ``seeds`` at their
    ``epochs`` (relative config paths, as the runs name them)."""
    with open(path) as f:
        runs = json.load(f)['runs']
    wanted = {(osp.relpath(c, ROOT), s): epochs[c] for c in configs for s in seeds}
    return {(r['config'], r['seed']): r for r in runs
            if wanted.get((r['config'], r['seed'])) == r['epochs']}


def train_or_reuse(config: str, seed: int, epochs: int, args, threads: int,
                   recorded: dict) -> dict:
    """:func:`train_one`, except that a run which has not finished in the work dir but is in
    ``recorded`` (:func:`study_runs`) is taken from there instead of being trained."""
    key = (osp.relpath(config, ROOT), seed)
    if key in recorded:
        gather = argparse.Namespace(**vars(args) | dict(no_train=True))
        return train_one(config, seed, epochs, gather, threads) or recorded[key]
    return train_one(config, seed, epochs, args, threads)


def taken_note(runs: List[dict], recorded: dict, source: Optional[str]) -> str:
    """The page's line naming the runs that were taken from ``source``, not trained ('' if
    none, as always when nothing was recorded and ``source`` is None)."""
    ids = {id(run) for run in recorded.values()}
    taken = [f'`{osp.basename(r["config"])[:-3]}` seed {r["seed"]}' for r in runs
             if id(r) in ids]
    if not taken:
        return ''
    return (f'\nTaken from the runs recorded in `{osp.relpath(source, ROOT)}`, not trained '
            f'again: {", ".join(taken)}.\n')


def _mean_spread(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation (0 for one value); None where any run is undefined."""
    if any(v is None for v in values):
        return None, None
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def aggregate(runs: List[dict], metric: str = 'AP') -> List[dict]:
    """One row per (config, IoU type): mean and spread over seeds, overall and per bucket."""
    groups: Dict[tuple, List[dict]] = {}
    for run in runs:
        for iou_type, report in run['reports'].items():
            groups.setdefault((run['config'], iou_type), []).append(run | dict(report=report))
    rows = []
    for (config, iou_type), group in groups.items():
        group.sort(key=lambda r: r['seed'])
        first = group[0]['report']
        buckets = []
        for k, bucket in enumerate(first['buckets']):
            mean, spread = _mean_spread([g['report']['buckets'][k][metric] for g in group])
            buckets.append(dict(name=bucket['name'], num_images=bucket['num_images'],
                                mean=mean, std=spread,
                                per_seed=[g['report']['buckets'][k][metric] for g in group]))
        mean, spread = _mean_spread([g['report']['overall'][metric] for g in group])
        rows.append(dict(config=config, detector=group[0]['detector'],
                         backbone=group[0]['backbone'], iou_type=iou_type, metric=metric,
                         seeds=[g['seed'] for g in group], mean=mean, std=spread,
                         per_seed=[g['report']['overall'][metric] for g in group],
                         buckets=buckets, epochs=group[0]['epochs'],
                         seconds=float(np.mean([g['seconds'] for g in group]))))
    return rows


def _cell(mean, std) -> str:
    return '-' if mean is None else f'{100 * mean:.1f} ± {100 * std:.1f}'


def format_table(rows: List[dict], sizes: Dict[str, dict]) -> str:
    """Markdown: a row per (detector, IoU type, backbone); AP x 100 as mean ± std over its seeds."""
    names = [b['name'] for b in rows[0]['buckets']]
    images = [str(b['num_images']) for b in rows[0]['buckets']]
    header = (['detector', 'AP of', 'backbone', 'backbone params (M)', 'backbone GFLOPs',
               'epochs', 'seeds', 'train s/run', 'AP all'] +
              [f'r {n} ({i} img)' for n, i in zip(names, images)])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in sorted(rows, key=lambda r: (r['detector'], r['iou_type'], r['backbone'])):
        size = sizes[row['config']]
        cells = [row['detector'], row['iou_type'], row['backbone'],
                 f"{size['backbone_params'] / 1e6:.2f}", f"{size['backbone_flops'] / 1e9:.2f}",
                 str(row['epochs']), ', '.join(map(str, row['seeds'])),
                 f"{row['seconds']:.0f}", _cell(row['mean'], row['std'])]
        cells += [_cell(b['mean'], b['std']) for b in row['buckets']]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    from rich.progress import Progress

    make_data(args.data, args.num_train, args.num_val)
    # configs are read here, not in the pool's threads: mmengine's Config is not thread-safe
    epochs = {c: args.epochs or Config.fromfile(c).train_cfg.max_epochs for c in args.configs}
    jobs = [(c, s) for c in args.configs for s in args.seeds]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    recorded = {}
    if args.runs_from:
        recorded = study_runs(args.runs_from, args.configs, args.seeds, epochs)
    runs = []
    with Progress() as progress, ThreadPoolExecutor(args.jobs) as pool:
        task = progress.add_task(f'{len(jobs)} runs, {args.jobs} at once', total=len(jobs))
        futures = [pool.submit(train_or_reuse, c, s, epochs[c], args, threads, recorded)
                   for c, s in jobs]
        failed = []
        for future in futures:
            try:
                run = future.result()
            except RuntimeError as error:  # the other runs go on; the table waits for all
                failed.append(str(error))
                progress.console.print(f'[red]{error}')
                continue
            finally:
                progress.advance(task)
            if run is None:
                continue
            runs.append(run)
            ap = run['reports']['bbox']['overall']['AP']
            progress.console.print(f"{run['config']} seed {run['seed']}: bbox AP {ap:.3f} "
                                   f"({run['seconds']:.0f} s)")
    if failed:
        sys.exit(f'occlusion_study: {len(failed)} of {len(jobs)} runs failed (rerun to retry '
                 'them; finished runs are kept):\n' + '\n'.join(failed))
    if not runs:
        sys.exit('occlusion_study: no finished run to gather')
    done = {(r['config'], r['seed']) for r in runs}
    missing = [f'`{osp.basename(c)[:-3]}` seed {s}' for c, s in jobs
               if (osp.relpath(c, ROOT), s) not in done]
    sizes = {}
    for config in sorted({r['config'] for r in runs}):
        size = config_complexity(osp.join(ROOT, config), shape=(args.size, args.size))
        sizes[config] = {k: size[k] for k in ('backbone_params', 'backbone_flops',
                                              'model_params', 'model_flops')}
    rows = aggregate(runs)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'occlusion_study.json'), 'w') as f:
        json.dump(dict(seeds=args.seeds, data=osp.relpath(args.data, ROOT),
                       sizes=sizes, runs=runs, summary=rows), f, indent=1)
    table = format_table(rows, sizes)
    plot = plot_occlusion_study(rows, osp.join(args.out, 'occlusion_study.png'))
    print(table)
    print(f'written: {args.out}/occlusion_study.json, .png')
    if args.page:
        image = osp.relpath(plot, osp.dirname(osp.abspath(args.page)))
        num_images = sum(b['num_images'] for b in rows[0]['buckets'])
        command = 'tools/study/occlusion_study.py'
        if args.runs_from:
            command += f' --runs-from {osp.relpath(args.runs_from, ROOT)}'
        block = (f'COCO AP x 100, mean ± standard deviation over the seeds of each row, for all '
                 f'{num_images} validation images and per occlusion bucket; backbone FLOPs at '
                 f'{args.size}x{args.size}; train s/run: mean wall time of one run on a shared '
                 'machine (a rough cost, not a benchmark). Generated by '
                 f'`{command}` (do not edit between the markers).\n\n'
                 f'{table}\n\n![AP against occlusion ratio, one line per backbone]({image})\n')
        block += taken_note(runs, recorded, args.runs_from)
        if missing:
            block += f'\nNot finished yet (not in the table): {", ".join(missing)}.\n'
        write_block(args.page, block)


if __name__ == '__main__':
    main()
