"""Pretrained vs from scratch, in miniature: each study backbone is pretrained on shape-classes
(the CPU stand-in of ImageNet), then the occlusion-study detector is trained from that checkpoint
and from scratch, with the same budget and seeds; AP overall and per occlusion bucket.

    python tools/study/pretrain_study.py [--backbones tiedresnet14-tiny sknet14-tiny ...]
        [--detector retinanet] [--seeds 0 1] [--jobs 2] [--cls-data data/shape_classes]
        [--data data/occlusion_shapes_study] [--work-dir work_dirs/study] [--out docs/study]
        [--page docs/occlusion_study.md] [--scratch-from docs/study/occlusion_study.json]
        [--no-train]

For a backbone B the study needs three configs: ``configs/shapecls/B_shapecls.py`` (the
classifier, trained through ``tools/train.py`` into the work dir that the detector's checkpoint
names), ``configs/study/DET_B_fpn_occshapes.py`` (from scratch) and
``configs/study/pretrained/DET_B_fpn_occshapes_pretrained.py`` (the same detector whose backbone
starts from the classifier's ``backbone.*``). Detector runs go through
``tools/study/occlusion_study.py``'s ``train_one`` (same data, work dirs and reports; a finished
run is reused, so both studies share their from-scratch runs; ``--scratch-from`` takes those
that have not finished there from the occlusion study's json). The study writes
``{out}/pretrain_study.json`` and ``pretrain_study.png`` (a panel per backbone) and puts the
table (mean and each seed, the classifier's val top-1) into ``--page`` between
``<!-- pretrain:begin -->`` and ``<!-- pretrain:end -->``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import occlusion_study as study  # noqa: E402  (this folder: its runs, reports and table cells)
from plugin.visualization import plot_occlusion_study  # noqa: E402

BEGIN, END = '<!-- pretrain:begin -->', '<!-- pretrain:end -->'
BACKBONES = ('r18-tiny', 'tiedresnet14-tiny', 'sknet14-tiny', 'dr-r18-tiny', 'dsc-r18-tiny')


def configs_of(backbone: str, detector: str) -> Dict[str, str]:
    """The classifier, from-scratch and pretrained detector configs of ``backbone``."""
    return dict(
        classifier=osp.join(ROOT, 'configs', 'shapecls', f'{backbone}_shapecls.py'),
        scratch=osp.join(ROOT, 'configs', 'study', f'{detector}_{backbone}_fpn_occshapes.py'),
        pretrained=osp.join(ROOT, 'configs', 'study', 'pretrained',
                            f'{detector}_{backbone}_fpn_occshapes_pretrained.py'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES))
    parser.add_argument('--detector', default='retinanet', choices=['retinanet', 'mask-rcnn'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once; each gets cpu_count // jobs threads')
    parser.add_argument('--cls-data', default=osp.join(ROOT, 'data/shape_classes'),
                        help='shape-classes data; generated with the defaults if missing')
    parser.add_argument('--data', default=osp.join(ROOT, 'data/occlusion_shapes_study'),
                        help='occlusion-shapes data; generated as the occlusion study does')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/study'),
                        help='detector runs (the occlusion study\'s work dir: shared runs)')
    parser.add_argument('--out', default=osp.join(ROOT, 'docs/study'))
    parser.add_argument('--page', default=osp.join(ROOT, 'docs/occlusion_study.md'),
                        help='markdown page whose pretrain:begin/end block receives the table')
    parser.add_argument('--scratch-from', metavar='STUDY_JSON',
                        help="from-scratch runs that have not finished in --work-dir are taken "
                        "from this occlusion_study.json (same config, seed and epochs) instead "
                        "of being trained")
    parser.add_argument('--no-train', action='store_true',
                        help='only gather finished runs; the page names the others')
    args = parser.parse_args(argv)
    if args.scratch_from and not osp.isfile(args.scratch_from):
        parser.error(f'--scratch-from: no such file: {args.scratch_from}')
    if min(args.seeds, default=-1) < 0 or len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct non-negative integers, got {args.seeds}')
    if args.jobs < 1:
        parser.error('--jobs must be at least 1')
    for backbone in args.backbones:
        missing = [p for p in configs_of(backbone, args.detector).values() if not osp.isfile(p)]
        if missing:
            parser.error(f'--backbones {backbone}: no such config: {missing}')
    if args.page and len(study.split_page(args.page, BEGIN, END)) != 3:
        parser.error(f'--page {args.page} needs one {BEGIN!r} line and one {END!r} line after it')
    return args


def checkpoint_of(pretrained_config: str, classifier_config: str) -> str:
    """The classifier checkpoint that the pretrained detector loads; it must be the file that
    the classifier's run writes (``epoch_{max_epochs}.pth``)."""
    path = Config.fromfile(pretrained_config).model.backbone.init_cfg.checkpoint
    epochs = Config.fromfile(classifier_config).train_cfg.max_epochs
    if osp.basename(path) != f'epoch_{epochs}.pth':
        raise ValueError(f'{pretrained_config} loads {path}, but {classifier_config} trains '
                         f'{epochs} epochs and writes epoch_{epochs}.pth')
    return osp.join(ROOT, path)


def val_top1(work_dir: str) -> List[list]:
    """``[[epoch, top-1 %], ...]`` of the newest run in ``work_dir`` (mmengine's scalars.json)."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        return []
    with open(runs[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [[r['step'], r['accuracy/top1']] for r in records if 'accuracy/top1' in r]


def pretrain(backbone: str, classifier: str, ckpt: str, args, threads: int) -> Optional[dict]:
    """Train (or reuse) the classifier of ``backbone`` into ``ckpt``; its record with the val
    top-1."""
    work_dir = osp.dirname(ckpt)
    record_file = osp.join(work_dir, 'pretrain_run.json')
    if osp.isfile(ckpt) and osp.isfile(record_file):
        with open(record_file) as f:
            return json.load(f)
    if args.no_train:
        return None
    data = args.cls_data.rstrip('/') + '/'
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    returncode, seconds = study.run_train(classifier, work_dir, options, threads,
                                          'pretrain_train.log')
    top1 = val_top1(work_dir)
    if returncode != 0 or not osp.isfile(ckpt) or not top1:
        raise RuntimeError(f'pretraining {backbone} failed (exit {returncode}): see '
                           f'{osp.join(work_dir, "pretrain_train.log")}')
    record = dict(config=osp.relpath(classifier, ROOT), backbone=backbone,
                  checkpoint=osp.relpath(ckpt, ROOT), top1=top1, threads=threads,
                  seconds=seconds)
    with open(record_file, 'w') as f:
        json.dump(record, f)
    return record


def _cell(row: Optional[dict], bucket: Optional[int] = None) -> str:
    """AP x 100: the mean over seeds, then each seed's value."""
    if row is None:
        return '-'
    item = row if bucket is None else row['buckets'][bucket]
    if item['mean'] is None:
        return '-'
    seeds = ' / '.join(f'{100 * v:.1f}' for v in item['per_seed'])
    return f"{100 * item['mean']:.1f} ({seeds})"


def _difference(scratch: Optional[dict], pretrained: Optional[dict],
                bucket: Optional[int] = None) -> str:
    if scratch is None or pretrained is None:
        return '-'
    a, b = ((r if bucket is None else r['buckets'][bucket])['mean'] for r in (scratch, pretrained))
    return '-' if a is None or b is None else f'{100 * (b - a):+.1f}'


def format_table(rows: List[dict], pretrains: Dict[str, dict], backbones: List[str]) -> str:
    """Markdown: per backbone a from-scratch row, a pretrained row and their difference."""
    names = [b['name'] for b in rows[0]['buckets']]
    images = [str(b['num_images']) for b in rows[0]['buckets']]
    header = (['backbone', 'start', 'shape-classes val top-1 (%)', 'epochs', 'seeds', 'AP all'] +
              [f'r {n} ({i} img)' for n, i in zip(names, images)])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    by_start = {(r['backbone'], 'pretrained' in r['config']): r for r in rows
                if r['iou_type'] == 'bbox'}
    for backbone in backbones:
        scratch, pretrained = by_start.get((backbone, False)), by_start.get((backbone, True))
        pretrain = pretrains.get(backbone)
        top1 = f"{pretrain['top1'][-1][1]:.1f}" if pretrain else '-'
        for start, row, acc in (('scratch', scratch, '-'), ('shape-classes', pretrained, top1)):
            epochs = str(row['epochs']) if row else '-'
            seeds = ', '.join(map(str, row['seeds'])) if row else '-'
            cells = [backbone, start, acc, epochs, seeds, _cell(row)]
            cells += [_cell(row, k) for k in range(len(names))]
            lines.append('| ' + ' | '.join(cells) + ' |')
        cells = [backbone, 'difference', '', '', '', _difference(scratch, pretrained)]
        cells += [_difference(scratch, pretrained, k) for k in range(len(names))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_rows(rows: List[dict]) -> List[dict]:
    """The box-AP rows for :func:`plot_occlusion_study`: one panel per backbone, a line for from
    scratch and one for pretrained."""
    return [r | dict(detector=r['backbone'],
                     backbone='pretrained' if 'pretrained' in r['config'] else 'from scratch')
            for r in rows if r['iou_type'] == 'bbox']


def command(args) -> str:
    """The command line that reproduces the table (defaults left out)."""
    parts = ['.venv/bin/python tools/study/pretrain_study.py']
    if args.scratch_from:
        parts.append(f'--scratch-from {osp.relpath(args.scratch_from, ROOT)}')
    if list(args.backbones) != list(BACKBONES):
        parts.append('--backbones ' + ' '.join(args.backbones))
    if args.detector != 'retinanet':
        parts.append(f'--detector {args.detector}')
    if args.seeds != [0, 1]:
        parts.append('--seeds ' + ' '.join(map(str, args.seeds)))
    return ' '.join(parts)


def main(argv=None) -> None:
    args = parse_args(argv)
    from rich.progress import Progress

    if not osp.isfile(osp.join(args.cls_data, 'meta', 'val.txt')) and not args.no_train:
        subprocess.run([sys.executable, osp.join(ROOT, 'tools/dataset/make_shape_classes.py'),
                        '--out', args.cls_data], check=True)
    if not args.no_train:
        study.make_data(args.data, 240, 200)
    configs = {b: configs_of(b, args.detector) for b in args.backbones}
    # configs are read here, not in the pool's threads: mmengine's Config is not thread-safe
    epochs = {c: Config.fromfile(c).train_cfg.max_epochs
              for b in args.backbones for c in (configs[b]['scratch'], configs[b]['pretrained'])}
    ckpts = {b: checkpoint_of(configs[b]['pretrained'], configs[b]['classifier'])
             for b in args.backbones}
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    runs_args = argparse.Namespace(work_dir=args.work_dir, data=args.data, no_train=args.no_train)
    reused = {}
    if args.scratch_from:
        reused = study.study_runs(args.scratch_from,
                                  [configs[b]['scratch'] for b in args.backbones],
                                  args.seeds, epochs)
    pretrains, runs, failed = {}, [], []
    with Progress() as progress, ThreadPoolExecutor(args.jobs) as pool:
        # per backbone: the classifier first, then the detector runs; a pretrained run waits for
        # its classifier, which was queued (so started) before it: no deadlock at any --jobs
        jobs = []
        for b in args.backbones:
            first = pool.submit(pretrain, b, configs[b]['classifier'], ckpts[b], args, threads)
            jobs.append((f'{b} shape-classes classifier', first))
            for start in ('scratch', 'pretrained'):
                for seed in args.seeds:
                    def run(config=configs[b][start], seed=seed, first=first, start=start):
                        if start == 'pretrained' and first.result() is None:
                            return None  # --no-train and no classifier
                        return study.train_or_reuse(config, seed, epochs[config], runs_args,
                                                    threads, reused)
                    jobs.append((f'{b} {start} seed {seed}', pool.submit(run)))
        task = progress.add_task(f'{len(jobs)} runs, {args.jobs} at once', total=len(jobs))
        for name, future in jobs:
            try:
                result = future.result()
            except RuntimeError as error:  # the other runs go on; the table waits for all
                failed.append(f'{name}: {error}')
                progress.console.print(f'[red]{name}: {error}')
                continue
            finally:
                progress.advance(task)
            if result is None:
                continue
            if 'top1' in result:
                pretrains[result['backbone']] = result
                progress.console.print(f"{name}: val top-1 {result['top1'][-1][1]:.1f}% "
                                       f"({result['seconds']:.0f} s)")
            else:
                runs.append(result)
                ap = result['reports']['bbox']['overall']['AP']
                progress.console.print(f"{name}: bbox AP {ap:.3f} ({result['seconds']:.0f} s)")
    if failed:
        sys.exit(f'pretrain_study: {len(failed)} of {len(jobs)} runs failed (rerun to retry '
                 'them; finished runs are kept):\n' + '\n'.join(failed))
    if not runs:
        sys.exit('pretrain_study: no finished detector run to gather')
    rows = study.aggregate(runs)
    table = format_table(rows, pretrains, args.backbones)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'pretrain_study.json'), 'w') as f:
        json.dump(dict(seeds=args.seeds, detector=args.detector,
                       data=osp.relpath(args.data, ROOT), cls_data=osp.relpath(args.cls_data, ROOT),
                       pretrain=pretrains, runs=runs, summary=rows), f, indent=1)
    plot = plot_occlusion_study(plot_rows(rows), osp.join(args.out, 'pretrain_study.png'),
                                title=f'{args.detector} box AP: from scratch and pretrained '
                                'on shape-classes')
    print(table)
    print(f'written: {args.out}/pretrain_study.json, .png')
    if args.page:
        done = {(r['config'], r['seed']) for r in runs}
        missing = [f'`{osp.basename(configs[b][s])[:-3]}` seed {seed}' for b in args.backbones
                   for s in ('scratch', 'pretrained') for seed in args.seeds
                   if (osp.relpath(configs[b][s], ROOT), seed) not in done]
        num_images = sum(b['num_images'] for b in rows[0]['buckets'])
        block = (f'{args.detector} box AP x 100 on the {num_images} validation images and per '
                 'occlusion bucket: the mean over the seeds, then each seed in brackets; '
                 '"difference" is pretrained minus scratch of the means; top-1 of the classifier '
                 'on the shape-classes validation split at its last epoch. Generated by '
                 f'`{command(args)}` (do not edit between the markers).\n\n{table}\n')
        image = osp.relpath(plot, osp.dirname(osp.abspath(args.page)))
        block += (f'\n![{args.detector} box AP per occlusion bucket, from scratch and '
                  f'pretrained]({image})\n')
        block += study.taken_note(runs, reused, args.scratch_from)
        if missing:
            block += f'\nNot finished yet (not in the table): {", ".join(missing)}.\n'
        study.write_block(args.page, block, BEGIN, END)


if __name__ == '__main__':
    main()
