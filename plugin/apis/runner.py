"""What ``tools/train.py`` and ``tools/test.py`` share: arguments, config loading, the runner.

A config's ``default_scope`` (``mmdet``, ``mmseg`` or ``mmpretrain``) picks the OpenMMLab codebase
whose registries build the runner, exactly as that codebase's own tools would.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """The arguments mmdet's train.py and test.py have in common."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, as key=value pairs (key="[a,b]" for lists)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, apply ``--cfg-options``/``--work-dir``/``--launcher``; check its scope."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in SCOPES:
        raise SystemExit(f'error: default_scope of {args.config} is {scope!r}; '
                         f'these tools run {" and ".join(SCOPES)} configs')
    cfg.default_scope = scope
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """``Runner.from_cfg``, or the scope's ``RUNNERS`` when the config names a ``runner_type``."""
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import RUNNERS
    elif cfg.default_scope == 'mmseg':
        from mmseg.registry import RUNNERS
    else:
        from mmpretrain.registry import RUNNERS
    return RUNNERS.build(cfg)
