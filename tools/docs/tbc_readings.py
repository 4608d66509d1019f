"""Generate docs/tbc.md's tables of TiedBottleneck readings and of tied attention blocks.

    python tools/docs/tbc_readings.py [--page docs/tbc.md]

Readings (between ``<!-- tbc-readings:begin -->`` and ``<!-- tbc-readings:end -->``): every
reading of the block that the paper's text admits, ``B`` per stage or per split times the four
mixers, built for TiedResNet50, TiedResNet50-S, TiedResNet101, TiedResNeXt50 and TiedResNeXt50-S;
parameters and FLOPs at 224x224 with the ImageNet classifier (as the paper's Table 1) and their
ratios to ResNet-50/101 and ResNeXt-50 32x4d, beside the paper's statements and how many of them
each reading meets. Attention (``tbc-attention``): parameters of the SE/TiedSE and GCB/TiedGCB
blocks of a ResNet-50, and SE-ResNet-50 against TiedSENet50. Nothing between the markers is typed
by hand except the paper's statements (``STATEMENTS``, ``ATTENTION``).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmcv.cnn.bricks import ContextBlock  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

import plugin  # noqa: E402,F401  (registers the backbones and layers)
from plugin.analysis.complexity import module_complexity  # noqa: E402
from plugin.backbones.tied_resnet import MIXERS  # noqa: E402
from plugin.layers import TiedGCB, TiedSE  # noqa: E402

FC_PARAMS, FC_FLOPS = 2048 * 1000 + 1000, 2048 * 1000  # the ImageNet classifier
BASELINES = {
    'ResNet-50': dict(type='ResNet', depth=50),
    'ResNet-101': dict(type='ResNet', depth=101),
    'ResNeXt-50 32x4d': dict(type='ResNeXt', depth=50, groups=32, base_width=4),
}
COLUMNS = [  # (name, backbone preset, baseline)
    ('TiedResNet50', dict(type='TiedResNet', depth=50), 'ResNet-50'),
    ('TiedResNet50-S', dict(type='TiedResNet', depth=50, arch='S'), 'ResNet-50'),
    ('TiedResNet101', dict(type='TiedResNet', depth=101), 'ResNet-101'),
    ('TiedResNeXt50', dict(type='TiedResNeXt', depth=50), 'ResNeXt-50 32x4d'),
    ('TiedResNeXt50-S', dict(type='TiedResNeXt', depth=50, arch='S'), 'ResNeXt-50 32x4d'),
]
B_READINGS = [('per stage', (1, 2, 4, 8)), ('per split', ((1, 2, 4, 8), ) * 4)]
READINGS = [(where, tied_B, mixer) for where, tied_B in B_READINGS for mixer in MIXERS]
PRESETS = {('per stage', 'concat-conv'): 'default', ('per split', 'sum-conv'): "arch='text'"}
# The paper's numeric statements (TBC, Table 1 and Sec. 4), as ratios to the column's baseline:
# (column, 'params' | 'flops', lowest, highest, the paper's words). '~' and a percentage: +-0.03;
# "similar complexity": +-0.10; "fewer": at most 0.99.
STATEMENTS = [
    ('TiedResNet50', 'params', 0.87, 0.93, '~10% fewer parameters'),
    ('TiedResNet50', 'flops', 0.90, 1.10, 'similar complexity'),
    ('TiedResNet50-S', 'params', 0.51, 0.57, '54% of the parameters'),
    ('TiedResNet50-S', 'flops', 0.57, 0.63, '60% of the FLOPs'),
    ('TiedResNet101', 'params', 0.87, 0.93, '~10% fewer parameters'),
    ('TiedResNet101', 'flops', 0.90, 1.10, 'similar complexity'),
    ('TiedResNeXt50', 'params', 0.0, 0.99, 'the same trend: fewer parameters'),
    ('TiedResNeXt50', 'flops', 0.90, 1.10, 'similar complexity'),
]
BEGIN, END = '<!-- {}:begin -->', '<!-- {}:end -->'
IMAGE = (1, 3, 224, 224)


def reading_cfg(column_cfg: dict, tied_B, mixer: str) -> dict:
    return dict(column_cfg, tied_B=tied_B, mixer=mixer)


def measure(cfg: dict, flops: bool = True) -> dict:
    """``{'params', 'flops'}`` of a backbone with the ImageNet classifier (FLOPs at 224x224, or
    ``None`` when ``flops=False``), or ``{'error': message}`` when the reading cannot be built."""
    init_default_scope('mmdet')
    try:
        net = MODELS.build(cfg)
    except ValueError as e:
        return dict(error=str(e).split(': ', 1)[-1])
    params = sum(p.numel() for p in net.parameters()) + FC_PARAMS
    if not flops:
        return dict(params=params, flops=None)
    return dict(params=params,
                flops=module_complexity(net, torch.zeros(IMAGE))['flops'] + FC_FLOPS)


def statement(column: str, metric: str) -> Optional[tuple]:
    return next((s for s in STATEMENTS if s[:2] == (column, metric)), None)


def meets(column: str, metric: str, ratio: float) -> Optional[bool]:
    """Whether ``ratio`` meets the paper's statement on ``column``'s ``metric`` (None: none)."""
    s = statement(column, metric)
    return None if s is None else s[2] <= round(ratio, 3) <= s[3]


def _mark(column: str, metric: str, ratio: float) -> str:
    met = meets(column, metric, ratio)
    return f'{ratio:.3f}' + {None: '', True: ' ✓', False: ' ✗'}[met]


def format_cell(column: str, m: dict, base: dict) -> str:
    if 'error' in m:
        return f"n/a ({m['error']})"
    return (f"{m['params'] / 1e6:.2f}M {_mark(column, 'params', m['params'] / base['params'])}"
            f" / {m['flops'] / 1e9:.2f}G {_mark(column, 'flops', m['flops'] / base['flops'])}")


def count_met(row: Dict[str, dict], bases: Dict[str, dict]) -> int:
    """Statements met by one reading (a reading that cannot be built meets none of its column)."""
    met = 0
    for column, _, baseline in COLUMNS:
        m = row[column]
        if 'error' not in m:
            met += sum(bool(meets(column, metric, m[metric] / bases[baseline][metric]))
                       for metric in ('params', 'flops'))
    return met


def readings_table(bases: Dict[str, dict], rows: List[Dict[str, dict]]) -> str:
    """The markdown table; ``rows[i][column]`` is the measurement of ``READINGS[i]``."""
    head = ['B (1, 2, 4, 8)', 'mixer'] + [c for c, _, _ in COLUMNS] + ['statements met']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    base_cells = [f"{b}: {bases[b]['params'] / 1e6:.2f}M / {bases[b]['flops'] / 1e9:.2f}G"
                  for _, _, b in COLUMNS]
    lines.append('| baseline | | ' + ' | '.join(base_cells) + ' | |')
    paper = []
    for column, _, _ in COLUMNS:
        said = [statement(column, metric) for metric in ('params', 'flops')]
        paper.append(' / '.join(f'"{s[4]}"' for s in said if s) or '(no number)')
    lines.append('| paper | | ' + ' | '.join(paper) + f' | of {len(STATEMENTS)} |')
    for (where, _, mixer), row in zip(READINGS, rows):
        preset = PRESETS.get((where, mixer))
        label = f'`{mixer}`' + (f' ({preset})' if preset else '')
        cells = [format_cell(c, row[c], bases[b]) for c, _, b in COLUMNS]
        lines.append(f'| {where} | {label} | ' + ' | '.join(cells)
                     + f' | {count_met(row, bases)} |')
    return '\n'.join(lines) + '\n'


def measure_readings() -> Tuple[Dict[str, dict], List[Dict[str, dict]]]:
    """The baselines' and every reading's measurements (the rows of :func:`readings_table`)."""
    bases = {name: measure(cfg) for name, cfg in BASELINES.items()}
    rows = []
    for where, tied_B, mixer in READINGS:
        rows.append({column: measure(reading_cfg(cfg, tied_B, mixer))
                     for column, cfg, _ in COLUMNS})
        print(f'{where} {mixer}: ' + ', '.join(
            f"{c} {m.get('params', 'n/a')}" for c, m in rows[-1].items()), flush=True)
    return bases, rows


def _resnet50(block: dict, stages=(True, ) * 4, backbone: str = 'ResNet') -> dict:
    """A depth-50 backbone with ``block`` after conv3 of every block of ``stages``."""
    return dict(type=backbone, depth=50,
                plugins=[dict(cfg=block, stages=stages, position='after_conv3')])


C3_C5 = (False, True, True, True)
# (setting, backbone, config of ours or None, the untied setting it is compared with, the paper)
ATTENTION = [
    ('SE, r=16, every block', _resnet50(dict(type='TiedSE', B=1, reduction=16)), None, None,
     'SE blocks of a ResNet-50: 2.53M'),
    ('TiedSE, B=8, r=16, every block', _resnet50(dict(type='TiedSE', B=8, reduction=16)),
     'mask-rcnn_r50-tiedse-b8_fpn_1x_coco', 'SE, r=16, every block', '64x fewer'),
    ('GCB, r=1/16, c3-c5', _resnet50(dict(type='ContextBlock', ratio=1. / 16), C3_C5), None, None,
     ''),
    ('TiedGCB, r=1/16, B=8, c3-c5', _resnet50(dict(type='TiedGCB', ratio=1. / 16, B=8), C3_C5),
     'mask-rcnn_r50-tiedgcb-r16-b8-c3-c5_fpn_1x_coco', 'GCB, r=1/16, c3-c5', ''),
    ('GCB, r=1/4, c3-c5', _resnet50(dict(type='ContextBlock', ratio=1. / 4), C3_C5), None, None,
     'GCB blocks of a ResNet-50: ~10M'),
    ('TiedGCB, r=1/4, B=4, c3-c5', _resnet50(dict(type='TiedGCB', ratio=1. / 4, B=4), C3_C5),
     'mask-rcnn_r50-tiedgcb-r4-b4-c3-c5_fpn_1x_coco', 'GCB, r=1/4, c3-c5', '16x fewer'),
]
SENETS = [  # (backbone, config, compared with, the paper)
    ('SE-ResNet-50 (ResNet-50 + SE, r=16)', _resnet50(dict(type='TiedSE', B=1, reduction=16)),
     None, None, ''),
    ('TiedSENet50 (TiedResNet50 + TiedSE, B=8, r=16)',
     _resnet50(dict(type='TiedSE', B=8, reduction=16), backbone='TiedResNet'),
     'mask-rcnn_tiedsenet50_fpn_1x_coco', 'SE-ResNet-50 (ResNet-50 + SE, r=16)',
     'TiedSENet follows the same trend (fewer parameters, similar complexity)'),
    ('TiedResNet50 + SE, r=16', _resnet50(dict(type='TiedSE', B=1, reduction=16),
                                          backbone='TiedResNet'),
     None, 'SE-ResNet-50 (ResNet-50 + SE, r=16)', ''),
]


def attention_params(cfg: dict) -> int:
    """Parameters of the SE/TiedSE/GCB/TiedGCB blocks of a backbone."""
    init_default_scope('mmdet')
    blocks = [m for m in MODELS.build(cfg).modules()
              if isinstance(m, (TiedSE, TiedGCB, ContextBlock))]
    return sum(p.numel() for m in blocks for p in m.parameters())


def attention_table() -> str:
    lines = ['| attention blocks in ResNet-50 | parameters | fewer by | config | paper |',
             '|---|---:|---:|---|---|']
    counts = {}
    for label, cfg, config, untied, paper in ATTENTION:
        counts[label] = attention_params(cfg)
        fewer = f'{counts[untied] / counts[label]:.1f}x' if untied else ''
        config = f'`{config}`' if config else ''
        lines.append(f'| {label} | {counts[label]:,} | {fewer} | {config} | {paper} |')
    lines += ['', '| backbone (+ classifier) | parameters | FLOPs (224x224) | vs SE-ResNet-50 '
              '| config | paper |', '|---|---:|---:|---|---|---|']
    sizes = {}
    for label, cfg, config, base, paper in SENETS:
        sizes[label] = measure(cfg)
        p, f = sizes[label]['params'], sizes[label]['flops']
        ratio = f"{p / sizes[base]['params']:.3f} / {f / sizes[base]['flops']:.3f}" if base else ''
        config = f'`{config}`' if config else ''
        lines.append(f'| {label} | {p / 1e6:.2f}M | {f / 1e9:.2f}G | {ratio} | {config} '
                     f'| {paper} |')
    return '\n'.join(lines) + '\n'


def split_page(text: str, name: str) -> List[str]:
    """``[before, block, after]`` around the ``name`` markers, or ``[]`` when they are absent."""
    head, sep, rest = text.partition(BEGIN.format(name) + '\n')
    block, sep2, tail = rest.partition(END.format(name) + '\n')
    return [head, block, tail] if sep and sep2 else []


def write_block(text: str, name: str, block: str) -> str:
    parts = split_page(text, name)
    if not parts:
        raise ValueError(f'the page has no {BEGIN.format(name)!r} line with '
                         f'{END.format(name)!r} after it')
    note = ('<!-- generated by tools/docs/tbc_readings.py: do not edit between the markers -->\n')
    return f'{parts[0]}{BEGIN.format(name)}\n{note}{block}{END.format(name)}\n{parts[2]}'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--page', default=osp.join(ROOT, 'docs', 'tbc.md'))
    args = parser.parse_args(argv)
    with open(args.page) as f:
        text = f.read()
    for name in ('tbc-readings', 'tbc-attention'):
        if not split_page(text, name):
            parser.error(f'--page {args.page} needs one {BEGIN.format(name)!r} line and one '
                         f'{END.format(name)!r} line after it')
    bases, rows = measure_readings()
    text = write_block(text, 'tbc-readings', readings_table(bases, rows))
    text = write_block(text, 'tbc-attention', attention_table())
    with open(args.page, 'w') as f:
        f.write(text)
    print(f'tables -> {args.page}')


if __name__ == '__main__':
    main()
