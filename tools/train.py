"""Train a detector (mmdet config) or a segmentor (mmseg config) with the mmdynconv modules.

Same command line as mmdet's tools/train.py. On top of it: the plugin is imported (configs need
no custom_imports), ``--resume`` works on torch >= 2.6 with weights_only kept on, and
``--launcher pytorch`` runs on CPU with gloo (see plugin/utils/mmengine_patches.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

import plugin  # noqa: E402,F401  (registers the modules, applies the mmengine patches)
from plugin.apis import add_runner_args, build_runner, load_config  # noqa: E402
from plugin.utils import CheckpointError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest in the work dir')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('error: --amp needs a CUDA device (mmengine\'s AmpOptimWrapper '
                             'does not run on CPU)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise SystemExit('error: --auto-scale-lr needs auto_scale_lr.base_batch_size '
                             'in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.default_scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    try:
        build_runner(cfg).train()
    except CheckpointError as err:  # a damaged or refused file: one line
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main()
