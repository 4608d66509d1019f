"""Test (and evaluate) a detector, segmentor or classifier checkpoint; mmdet's tools/test.py
command line.

``--out`` writes mmdet's prediction pkl (readable by tools/analysis/occlusion_eval.py), for mmseg
configs the predicted label maps into that directory, for mmpretrain configs a pkl of the
predictions (mmpretrain's ``--out``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

import plugin  # noqa: E402,F401  (registers the modules, applies the mmengine patches)
from plugin.apis import add_runner_args, build_runner, load_config  # noqa: E402
from plugin.utils import CheckpointError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='mmdet and mmpretrain: a .pkl of the predictions; mmseg: '
                        'a directory for the predicted label maps')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved '
                        '(under the run\'s timestamped work dir)')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    scope = cfg.default_scope
    det = scope == 'mmdet'
    if args.out is not None and scope != 'mmseg' and not args.out.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'error: --out must be a .pkl file for {scope} configs, got {args.out}')
    if args.show or args.show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise SystemExit('error: --show/--show-dir need default_hooks.visualization '
                             'in the config')
        hook['draw'] = True
        if args.show:
            hook['show'], hook['wait_time'] = True, args.wait_time
        if args.show_dir:
            if det:
                hook['test_out_dir'] = args.show_dir
            elif scope == 'mmpretrain':
                hook['out_dir'] = args.show_dir
            else:
                cfg.visualizer['save_dir'] = args.show_dir
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise SystemExit('error: --tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = build_runner(cfg)
    if args.out is not None and det:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    elif args.out is not None and scope == 'mmpretrain':
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    try:
        runner.test()
    except CheckpointError as err:  # a damaged or refused file: one line
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main()
