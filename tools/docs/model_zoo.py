"""Generate docs/model_zoo.md from configs/: every config's backbone and whole-model parameters and
FLOPs, its CPU latency, and the paper's numbers beside ours.

    python tools/docs/model_zoo.py [--configs configs] [--out docs/model_zoo.md] [--repeat 3]
        [--threads N] [--no-latency]

Nothing in the page is typed by hand except the papers' numbers (``PAPER`` below, with their
source). Backbone numbers are at 224x224 (the papers' ImageNet convention, without classifier);
whole-model numbers and latency at the config's own test size (the ``Resize`` scale of its test
pipeline, ``crop_size`` for mmseg, the ``CenterCrop`` for mmpretrain: 224x224 on ImageNet, where
the whole model is the papers' classifier). Configs that build the same model at the same size
(1x and 2x schedules, a loss-only change) are measured once. Each family's table starts with the
mmdet / mmseg / mmpretrain configs that its configs inherit (``_base_ = 'mmdet::...'``, or the
upstream config made of the same ``mmpretrain::_base_/`` fragments), measured the same way.
"""
import argparse
import copy
import glob
import importlib
import json
import os
import os.path as osp
import platform
import re
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from plugin.analysis import build_model, config_complexity, empty_data_samples  # noqa: E402

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')

# (backbone type, depth or widen factor, preset) -> what the paper reports for its ImageNet model
# (classifier included, so above our backbone-only columns by the fc: 2.05 M params for a
# 2048-channel last stage).
PAPER = {
    ('ResNet', 50, None): 'ResNet-50: 25.6 M / 4.1 G (TBC paper, Table 1)',
    ('ResNeXt', 50, None): 'ResNeXt-50 32x4d: 25.0 M / 4.24 G (SKNet, Table 2)',
    ('TiedResNet', 50, 'base'): 'TiedResNet50: ~0.90x ResNet-50 params (~23.0 M), FLOPs '
                                '"similar" (TBC, Table 1)',
    ('TiedResNet', 50, 'S'): 'TiedResNet50-S: ~0.54x params (~13.8 M), ~0.60x FLOPs (~2.5 G) '
                             '(TBC, Table 1)',
    ('TiedResNeXt', 50, 'base'): 'TiedResNeXt50: fewer parameters than ResNeXt-50 32x4d at '
                                 'similar FLOPs, the same trend as TiedResNet50 (TBC, Table 1)',
    ('SKNet', 50, None): 'SKNet-50: 27.5 M / 4.47 G (SKNet, Table 2)',
    ('SKNet', 101, None): 'SKNet-101: 48.9 M / 8.46 G (SKNet, Table 2)',
    ('DRShuffleNetV2', 0.5, 'dr'): 'DRConv-ShuffleNetV2 0.5x: 46 M MAdds (DRConv, Table 1; '
                                   'with conv5 and fc)',
    ('DRShuffleNetV2', 0.5, None): 'ShuffleNetV2 0.5x: 1.4 M / 41 M MAdds (ShuffleNetV2, '
                                   'Table 5)',
}
# The papers' ImageNet top-1 of the same models, in the ImageNet table. Where a paper gives only
# relative numbers (TBC), the statement is quoted, not a number derived from it.
PAPER_TOP1 = {
    ('ResNet', 50, None): '76.x, the reference of the Tied rows (TBC, Table 1)',
    ('TiedResNet', 50, 'base'): '+1.5 over ResNet-50, ~10% fewer params (TBC, Table 1)',
    ('TiedResNet', 50, 'S'): 'above ResNet-50 with 54% of its params and 60% of its FLOPs '
                             '(TBC, Table 1)',
    ('TiedResNet', 101, 'base'): '+1.4 over ResNet-101, ~10% fewer params (TBC, Table 1)',
    ('TiedResNeXt', 50, 'base'): 'the same trend as TiedResNet50, against ResNeXt-50 32x4d '
                                 '(TBC, Table 1)',
    ('SKNet', 50, None): '79.21 (20.79% top-1 error; SKNet, Table 2)',
    ('SKNet', 101, None): '79.81 (20.19% top-1 error; SKNet, Table 2)',
    ('DRShuffleNetV2', 0.5, 'dr'): '67.1 at 46 M MAdds (DRConv)',
    ('DRShuffleNetV2', 0.5, None): '60.3 at 41 M FLOPs (39.7% top-1 error; ShuffleNetV2, Table 8)',
    ('DRShuffleNetV2', 1.0, None): '69.4 at 146 M FLOPs (30.6% top-1 error; ShuffleNetV2, '
                                   'Table 8)',
    ('TiedResNeSt', 50, None): 'TiedResNeSt-50-S above ResNeSt-50-S with 59% of its params and '
                               '82% of its FLOPs (TBC, Table 1; ours is not the -S, tbc.md)',
}
# (folder, title, page, what the page holds); tables of TOP1_FAMILIES get a "paper top-1" column
FAMILIES = [('tbc', 'Tied Block Convolution', 'tbc.md', 'Design and equations'),
            ('drconv', 'DRConv', 'drconv.md', 'Design and equations'),
            ('dsc', 'Dynamic Stride Convolution', 'dsc.md', 'Design and equations'),
            ('sk', 'Selective Kernel', 'sk.md', 'Design and equations'),
            ('imagenet', 'ImageNet-1k pretraining (mmpretrain)', 'pretraining.md',
             'Training and the hand-off of its checkpoints to the detection configs'),
            ('demo', 'Demo (occlusion-shapes, CPU)', 'getting_started.md',
             'Design and equations'),
            ('shapecls', 'Shape-classes pretraining (CPU stand-in of ImageNet)',
             'pretraining.md', 'Training and the hand-off of its checkpoint to the demo'),
            ('study', 'Occlusion study (occlusion-shapes, CPU)', 'occlusion_study.md',
             'Design and equations')]
TOP1_FAMILIES = ('imagenet', )


def find_configs(root: str) -> List[str]:
    return sorted(p for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True)
                  if '_base_' not in p.split(osp.sep))


def upstream_config(path: str) -> Optional[str]:
    """``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'``: the first mmdet/mmseg/mmpretrain
    config (not a ``_base_`` fragment) that ``path`` inherits, directly or through its relative
    bases. A config whose bases are only ``_base_/`` fragments of one package inherits, as its
    upstream, that package's config of the same fragments (:func:`config_of_fragments`)."""
    with open(path) as f:
        text = f.read()
    scoped = re.findall(rf"['\"]({'|'.join(SCOPES)})::([\w\-./]+\.py)['\"]", text)
    for scope, name in scoped:
        if not name.startswith('_base_/'):
            return f'{scope}::{name}'
    relatives = re.findall(r"['\"](\.{1,2}/[\w\-./]+\.py)['\"]", text)
    if scoped and not relatives and len({scope for scope, _ in scoped}) == 1:
        return config_of_fragments(scoped[0][0], [name for _, name in scoped])
    for relative in relatives:
        found = upstream_config(osp.normpath(osp.join(osp.dirname(path), relative)))
        if found:
            return found
    return None


def config_of_fragments(scope: str, fragments: List[str]) -> Optional[str]:
    """``'mmpretrain::resnet/resnet50_8xb32_in1k.py'`` for ``scope='mmpretrain'`` and its four
    fragments: the first config of the installed package (by path) whose ``_base_`` names exactly
    ``fragments`` (``'_base_/...'`` paths, in order), or None."""
    root = osp.dirname(resolve(f'{scope}::_base_'))
    for path in sorted(glob.glob(osp.join(root, '**', '*.py'), recursive=True)):
        name = osp.relpath(path, root)
        if name.split(osp.sep)[0] == '_base_':
            continue
        with open(path) as f:
            bases = re.search(r"^_base_\s*=\s*(\[[^\]]*\]|['\"][^'\"]+['\"])", f.read(), re.M)
        if bases and [osp.relpath(osp.normpath(osp.join(osp.dirname(path), b)), root)
                      for b in re.findall(r"['\"]([^'\"]+)['\"]", bases[1])] == fragments:
            return f'{scope}::{name}'
    return None


def resolve(config: str) -> str:
    """The file of ``'mmdet::x.py'`` in the installed package (its ``.mim/configs``)."""
    if '::' not in config:
        return config
    scope, name = config.split('::')
    package = importlib.import_module(scope)
    return osp.join(osp.dirname(package.__file__), '.mim', 'configs', name)


def test_shape(cfg: Config) -> Tuple[int, int]:
    """(H, W) of the config's test input: mmseg's ``crop_size``; mmpretrain's test ``CenterCrop``,
    else its ``ResizeEdge`` scale as a square; else the test ``Resize`` scale (``(w, h)`` as mmdet
    writes it, e.g. ``(1333, 800)`` -> ``(800, 1333)``)."""
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        return tuple(cfg.crop_size)
    steps = {step['type']: step for step in cfg.test_dataloader.dataset.pipeline}
    if scope == 'mmpretrain' and ('CenterCrop' in steps or 'ResizeEdge' in steps):
        size = (steps['CenterCrop']['crop_size'] if 'CenterCrop' in steps
                else steps['ResizeEdge']['scale'])
        w, h = (size, size) if isinstance(size, int) else size
        return h, w
    if 'Resize' in steps:
        w, h = steps['Resize']['scale']
        return h, w
    raise ValueError('no Resize step in the test pipeline (nor an mmpretrain CenterCrop or '
                     'ResizeEdge): cannot tell the input size')


def describe_backbone(backbone: dict) -> str:
    """``'DRResNet-50 (m=8)'``: type, depth/arch/width and the options that change it."""
    name = backbone['type'].split('.')[-1]
    if 'depth' in backbone:
        name += f"-{backbone['depth']}"
    if backbone.get('arch') not in (None, 'base'):
        name += f" {backbone['arch']}"
    if backbone.get('widen_factor') is not None:
        name += f" {backbone['widen_factor']}x"
    notes = []
    if backbone.get('base_channels') not in (None, 64):
        notes.append(f"{backbone['base_channels']} base ch")
    if backbone.get('drconv'):
        notes.append(f"m={backbone['drconv'].get('region_num', 8)}")
    elif 'drconv' in backbone:
        notes.append('no DRConv')
    for plugin in backbone.get('plugins') or ():
        notes.append(plugin['cfg']['type'])
    if backbone.get('dcn'):  # a conv config in mmdet ResNet's 3x3 slot of the chosen stages
        stages = [f'c{i + 2}' for i, on in enumerate(backbone.get('stage_with_dcn', ())) if on]
        notes.append(f"{backbone['dcn']['type']} 3x3 in {'/'.join(stages)}")
    if backbone.get('dsc_stem'):
        notes.append('DSC stem')
    if max(backbone.get('dilations') or (1, )) > 1:
        notes.append(f"dilations {tuple(backbone['dilations'])}")
    return name + (f" ({', '.join(notes)})" if notes else '')


def paper_key(backbone: dict) -> tuple:
    kind = backbone['type'].split('.')[-1]
    if kind == 'DRShuffleNetV2':
        return kind, backbone.get('widen_factor', 1.0), 'dr' if backbone.get('drconv') else None
    preset = backbone.get('arch', 'base') if kind in ('TiedResNet', 'TiedResNeXt') else None
    if backbone.get('plugins') or backbone.get('dcn'):
        return ()
    return kind, backbone.get('depth'), preset


def describe_init(model: dict) -> str:
    """Where the backbone's weights start: a published checkpoint (``'torchvision://resnet50'``),
    the pretraining config of ours whose run writes the checkpoint (``work_dirs/X/...`` -> ``'X'``),
    or ``'scratch'``."""
    init = model['backbone'].get('init_cfg')
    checkpoint = (init.get('checkpoint') if isinstance(init, dict)
                  and init.get('type') == 'Pretrained' else model.get('pretrained'))
    if not checkpoint:
        return 'scratch'
    return checkpoint if '://' in checkpoint else osp.basename(osp.dirname(checkpoint))


# backbone arguments that decide how weights start or which train, not the model's numbers (all
# parameters counted, eval mode)
INIT_ONLY = ('init_cfg', 'pretrained', 'frozen_stages', 'norm_eval')


def memo_key(model: dict, shape: Tuple[int, int]) -> str:
    """The key of a model's numbers: its config less ``INIT_ONLY`` (a COCO config and its
    from-ImageNet twin are measured once), and the input size."""
    model = copy.deepcopy(model)
    inner = model.get('detector') or model.get('segmentor') or model
    for key in INIT_ONLY:
        inner.pop(key, None)
        inner['backbone'].pop(key, None)
    return json.dumps([model, shape], sort_keys=True, default=str)


def latency_ms(model: torch.nn.Module, x: torch.Tensor, samples: list, repeat: int) -> float:
    """Median wall time of ``repeat`` inferences (``mode='predict'``: heads, NMS, masks and
    rescaling included, the data pipeline not), after a warm-up at half the resolution (the code
    paths and allocator warm, at a quarter of the cost of a full-size warm-up)."""
    times = []
    with torch.no_grad():
        half = torch.nn.functional.interpolate(x, scale_factor=0.5)
        model(half, _data_samples_like(samples, half), mode='predict')
        for _ in range(repeat):
            batch = copy.deepcopy(samples)  # predict writes its results into the samples
            start = time.perf_counter()
            model(x, batch, mode='predict')
            times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def _data_samples_like(samples: list, x: torch.Tensor) -> list:
    """A copy of ``samples`` with their shapes set to the image ``x``."""
    h, w = x.shape[-2:]
    out = copy.deepcopy(samples)
    for sample in out:
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                 batch_input_shape=(h, w)))
    return out


def measure(path: str, repeat: int, with_latency: bool, memo: Dict[str, dict]) -> dict:
    """One config's row: model/backbone description, complexity and latency. ``memo`` holds the
    numbers per (model, input size), so a model is built and measured once, and a later run
    (``--cache``) only adds what is missing (e.g. the latency after a ``--no-latency`` run)."""
    cfg = Config.fromfile(resolve(path))
    shape = test_shape(cfg)
    key = memo_key(cfg.model.to_dict(), shape)
    inner = cfg.model.get('detector') or cfg.model.get('segmentor') or cfg.model  # DSC wrappers
    model_name = cfg.model.type.split('.')[-1]
    if inner is not cfg.model:
        model_name += f"({inner.type.split('.')[-1]})"
    scope = cfg.get('default_scope', 'mmdet')
    # a classifier's neck is a pooling: its head names it better
    head = (inner.get('head') if scope == 'mmpretrain' else None) or inner.get('neck') \
        or inner.get('decode_head') or {}
    key_of_paper = paper_key(inner.backbone)
    row = dict(config=path if '::' in path else osp.relpath(path, ROOT), shape=shape,
               model=model_name, backbone=describe_backbone(inner.backbone),
               neck=head.get('type', '-'), paper=PAPER.get(key_of_paper, ''),
               paper_top1=PAPER_TOP1.get(key_of_paper, ''), init=describe_init(inner),
               latency_ms=None)
    numbers = memo.setdefault(key, {})
    need_latency = with_latency and numbers.get('latency_ms') is None
    if 'model_flops' in numbers and not need_latency:
        return row | numbers
    model = build_model(cfg)
    if 'model_flops' not in numbers:
        c = config_complexity(cfg, shape, backbone_shape=(224, 224), model=model)
        numbers.update(backbone_params=c['backbone_params'], backbone_flops_224=c['backbone_flops'],
                       model_params=c['model_params'], model_flops=c['model_flops'])
    if need_latency:
        x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
        samples = empty_data_samples(scope, shape)
        numbers['latency_ms'] = latency_ms(model, x, samples, repeat)
    return row | numbers


def _m(v: float) -> str:
    return f'{v / 1e6:.2f}'


def _g(v: float) -> str:
    """GFLOPs: two decimals, three below 1 G (46 M multiply-adds: ``'0.046'``)."""
    return f'{v / 1e9:.{2 if v >= 1e9 else 3}f}'


def format_page(rows: List[dict], threads: int, repeat: int,
                timed_families: Optional[List[str]] = None) -> str:
    timed = 'every config'
    if timed_families is not None:
        timed = ('the configs of ' + ', '.join(f'`configs/{f}`' for f in timed_families)
                 if timed_families else 'no config in this run')
    lines = [
        '# Model zoo',
        '',
        'Every config under `configs/`, measured by `tools/docs/model_zoo.py` (this page is its '
        'output: regenerate it, do not edit it). Parameters and FLOPs (1 multiply-add = 1 FLOP, '
        'counted by `plugin.analysis.module_complexity`); the backbone at 224x224 as in the '
        "papers' ImageNet tables (without their classifier), the whole model and its latency at "
        "the config's test size (224x224 for the ImageNet configs, whose whole model is the "
        "papers' ImageNet model, classifier included). Latency: median of "
        f'{repeat} inference(s) after a warm-up at half resolution, batch 1, '
        "`mode='predict'` (heads, NMS, masks, rescaling and softmax included; the data pipeline "
        "not), "
        f'random weights, on {platform.machine()} CPU with {threads} thread(s), torch '
        f"{torch.__version__}; measured for {timed}, '-' where not measured.",
        '',
        "FLOPs are traced in `mode='tensor'`, where two-stage models run their RoI heads (Cascade "
        'Mask R-CNN its mask heads too) on all proposals that survive NMS on a fixed random image '
        'with untrained weights (up to 1000): their FLOPs depend on the random model and are not '
        'comparable across rows; backbone numbers and one-stage and segmentation rows are. '
        'Untrained heads also keep few detections, so latency leaves out most of the per-detection '
        'work of a trained model. No config has trained weights here (no ImageNet, no COCO, no '
        'GPU): top-1 on ImageNet and AP on COCO are for a GPU run; the occlusion-shapes AP of the '
        'small models is in [the occlusion study](occlusion_study.md). The paper column quotes '
        'the papers (their classifier included); the family pages reconcile both counts. The '
        "ImageNet table's paper top-1 column quotes the papers' ImageNet top-1 of the same model, "
        'as a statement relative to the baseline where the paper gives only that (TBC). The '
        "column 'backbone starts from' says where the backbone's weights start: published "
        'weights, the pretraining config of ours whose checkpoint it loads (a row of the ImageNet '
        'table; [pretraining.md](pretraining.md#from-imagenet-weights-to-coco)), or scratch.',
        '',
    ]
    header = ('| config | model | backbone | neck / head | backbone params (M) '
              '| backbone GFLOPs @224 | model params (M) | model GFLOPs | input '
              '| CPU latency (ms) | paper | backbone starts from |')
    rule = '|---|---|---|---|---:|---:|---:|---:|---|---:|---|---|'
    for folder, title, page, lead in FAMILIES:
        family = [r for r in rows if r['family'] == folder]
        if not family:
            continue
        top1 = folder in TOP1_FAMILIES
        lines += [f'## {title}', '', f'{lead}: [{page}]({page}).', '',
                  header + (' paper top-1 |' if top1 else ''), rule + ('---|' if top1 else '')]
        for r in family:
            latency = '-' if r['latency_ms'] is None else f"{r['latency_ms']:.0f}"
            name = f"`{osp.basename(r['config'])[:-3]}`"
            if '::' in r['config']:
                name = f"{r['config'].split('::')[0]} {name} (baseline)"
            lines.append(
                f"| {name} | {r['model']} | {r['backbone']} | "
                f"{r['neck']} | {_m(r['backbone_params'])} | {_g(r['backbone_flops_224'])} | "
                f"{_m(r['model_params'])} | {_g(r['model_flops'])} | "
                f"{r['shape'][0]}x{r['shape'][1]} | {latency} | {r['paper']} | `{r['init']}` |"
                + (f" {r['paper_top1']} |" if top1 else ''))
        lines.append('')
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', default=osp.join(ROOT, 'configs'))
    parser.add_argument('--out', default=osp.join(ROOT, 'docs/model_zoo.md'))
    parser.add_argument('--repeat', type=int, default=1, help='timed inferences per model')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--no-latency', action='store_true', help='parameters and FLOPs only')
    parser.add_argument('--latency-families', nargs='+', choices=[f[0] for f in FAMILIES],
                        help='time only the configs of these families (default: all)')
    parser.add_argument('--cache', default=osp.join(ROOT, 'work_dirs/model_zoo_cache.json'),
                        help='numbers measured so far, reused and extended (\'\' for none)')
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.threads < 1:
        parser.error('--repeat and --threads must be at least 1')
    from rich.progress import Progress

    torch.set_num_threads(args.threads)
    paths = find_configs(args.configs)
    families = {f[0] for f in FAMILIES}
    unknown = [p for p in paths if osp.relpath(p, ROOT).split('/')[1] not in families]
    if unknown:
        sys.exit(f'model_zoo: configs outside the known families {sorted(families)}: {unknown}')
    jobs = []  # (family, config): each family's upstream baselines first, then its configs
    for folder, *_ in FAMILIES:
        mine = [p for p in paths if osp.relpath(p, ROOT).split('/')[1] == folder]
        baselines = sorted({upstream_config(p) for p in mine} - {None})
        jobs += [(folder, c) for c in baselines + mine]
    memo = {}
    if args.cache and osp.isfile(args.cache):
        with open(args.cache) as f:
            memo = json.load(f)
    rows = []
    with Progress() as progress:
        task = progress.add_task('measuring configs', total=len(jobs))
        for family, path in jobs:
            progress.update(task, description=osp.basename(path)[:-3])
            timed = not args.no_latency and family in (args.latency_families or [family])
            rows.append(dict(family=family) | measure(path, args.repeat, timed, memo))
            if args.cache:
                os.makedirs(osp.dirname(osp.abspath(args.cache)), exist_ok=True)
                with open(args.cache, 'w') as f:
                    json.dump(memo, f)
            progress.advance(task)
    with open(args.out, 'w') as f:
        f.write(format_page(rows, args.threads, args.repeat,
                            [] if args.no_latency else args.latency_families))
    print(f'{len(rows)} rows, {len(memo)} distinct models -> {args.out}')


if __name__ == '__main__':
    main()
