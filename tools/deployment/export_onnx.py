"""Export the model of a config to ONNX, check it with onnx.checker and compare onnxruntime with
PyTorch on a real image.

    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --shape H W --out M.onnx \
        [--dynamic] [--opset 17] [--end2end] [--verify] [--image PATH] [--deploy-cfg FILE]

The graph's input is the image after the config's data preprocessor (resized to HxW, normalised).
Its outputs are the model's raw outputs (mmdet's ``tensor`` mode: the dense head's scores and box
deltas per level, for a two-stage detector up to the RPN head; mmseg: the logits; mmpretrain: the
class logits), or with ``--end2end`` a whole detector's ``dets`` (N, 5), ``labels`` (N) and
``masks`` (N, 28, 28) (RetinaNet, Faster and Mask R-CNN; one image of fixed size). ``--dynamic``:
batch, height and width dynamic, compared at a second size too. ``--deploy-cfg``: the settings in a
small config of their own, as mmdeploy keeps them (``tools/deployment/configs/``); flags override.

Exit status: 0; 1 when ``--verify`` finds a max abs difference above ``--tolerance``; 2 on bad input
(one line naming it).
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import Tuple

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path[:0] = [ROOT, HERE]

DEFAULT_IMAGE = osp.join(ROOT, 'data', 'occlusion_shapes', 'images', 'val', '000001.png')
SETTINGS = dict(shape=None, opset=17, dynamic=False, end2end=False)  # what a deploy cfg may set


class UsageError(Exception):
    """Bad input: the CLI prints the message as one line and exits 2."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='model config (mmdet, mmseg or mmpretrain)')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: the initial ones)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width')
    parser.add_argument('--opset', type=int, help='ONNX opset (default 17)')
    parser.add_argument('--dynamic', action='store_true', default=None,
                        help='dynamic batch, height and width')
    parser.add_argument('--end2end', action='store_true', default=None,
                        help='a whole detector with its post-processing')
    parser.add_argument('--deploy-cfg', help='a config with onnx_config=dict(shape=(H, W), '
                        'opset=..., dynamic=..., end2end=...)')
    parser.add_argument('--image', default=DEFAULT_IMAGE,
                        help='image to compare on (default: the first val image of the demo '
                        'data, made by tools/dataset/make_occlusion_shapes.py)')
    parser.add_argument('--verify', action='store_true',
                        help='exit 1 when the difference is above --tolerance')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    args = parser.parse_args(argv)
    settings = dict(SETTINGS)
    if args.deploy_cfg:
        settings.update(read_deploy_cfg(args.deploy_cfg))
    for key, value in settings.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def read_deploy_cfg(path: str) -> dict:
    from mmengine.config import Config
    if not osp.isfile(path):
        raise UsageError(f'deploy config not found: {path}')
    onnx_config = dict(Config.fromfile(path).get('onnx_config', {}))
    unknown = sorted(set(onnx_config) - set(SETTINGS))
    if unknown:
        raise UsageError(f'{path}: onnx_config keys {unknown} are not among {sorted(SETTINGS)}')
    return onnx_config


def check_args(args) -> None:
    """The checks that need no model: files and numbers."""
    from plugin.deployment import SUPPORTED_OPSETS
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint),
                       ('image', args.image)):
        if path is not None and not osp.isfile(path):
            hint = (' (make it with tools/dataset/make_occlusion_shapes.py --out '
                    'data/occlusion_shapes, or give --image)') if path == DEFAULT_IMAGE else ''
            raise UsageError(f'{what} not found: {path}{hint}')
    if args.shape is None:
        raise UsageError('--shape H W is required (or shape=(H, W) in --deploy-cfg)')
    if min(args.shape) < 1:
        raise UsageError(f'--shape must be positive, got {list(args.shape)}')
    if args.opset not in SUPPORTED_OPSETS:
        raise UsageError(f'--opset {args.opset} is not supported: use '
                         f'{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}')
    if args.end2end and args.dynamic:
        raise UsageError('--end2end exports one image of fixed size: leave out --dynamic')
    if not args.out.endswith('.onnx'):
        raise UsageError(f'--out must be a .onnx file, got {args.out}')


def load_model(config: str, checkpoint=None):
    """The config's model in eval mode, with ``checkpoint``'s weights (mmengine's
    ``load_checkpoint``, made safe by the plugin)."""
    from mmengine.runner import load_checkpoint

    from plugin.analysis import build_model
    from plugin.utils import CheckpointError
    model = build_model(config)
    if checkpoint:
        try:
            load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
        except CheckpointError as err:
            raise UsageError(str(err)) from None
    return model


def image_input(model, path: str, shape, batch: int = 1):
    """``batch`` copies of the image at ``path`` resized to ``shape`` (H, W) after the model's
    data preprocessor (channel order, normalisation) as one tensor."""
    import mmcv
    import torch
    img = mmcv.imread(path)  # BGR, as LoadImageFromFile
    if img is None:
        raise UsageError(f'image {path}: not an image file mmcv can read')
    img = mmcv.imresize(img, (shape[1], shape[0]))
    tensor = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    with torch.no_grad():
        x = model.data_preprocessor(dict(inputs=[tensor] * batch), False)['inputs']
    if tuple(x.shape[-2:]) != tuple(shape):
        raise UsageError(f'--shape {shape[0]} {shape[1]}: the data preprocessor pads it to '
                         f'{x.shape[-2]}x{x.shape[-1]}; give a size it keeps')
    return x


def compare(graph, path: str, x) -> Tuple[float, float]:
    """Max abs difference of onnxruntime's outputs from PyTorch's on ``x`` (inf when the
    number of detections differs), and the largest absolute PyTorch output."""
    import torch

    from plugin.deployment import max_abs_diff, run_onnxruntime
    with torch.no_grad():
        expected = graph(x)
    scale = max((float(t.abs().max()) for t in expected if t.numel()), default=0.)
    try:
        return max_abs_diff(expected, run_onnxruntime(path, x)), scale
    except ValueError as err:
        print(f'outputs differ: {err}')
        return float('inf'), scale


def export(args) -> float:
    """Export as ``args`` say, print what was compared; the largest difference."""
    import numpy as np
    import torch
    from onnx_graphs import RawOutputs, end2end, output_names

    from plugin.deployment import export_onnx
    model = load_model(args.config, args.checkpoint)
    graph = end2end(model) if args.end2end else RawOutputs(model)
    graph.eval()
    x = image_input(model, args.image, args.shape)
    with torch.no_grad():
        count = len(graph(x))
    with warnings.catch_warnings():
        if args.end2end:  # sizes fixed by the trace, as documented: no news
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
        export_onnx(graph, x, args.out, opset=args.opset, dynamic=args.dynamic,
                    output_names=output_names(graph, count))
    kind = 'end-to-end detector' if args.end2end else 'raw outputs'
    print(f'exported {args.config} -> {args.out} ({kind}, {count} outputs, opset {args.opset}, '
          f'{"dynamic" if args.dynamic else "static"} input 1x3x{args.shape[0]}x{args.shape[1]})')
    checks = [(1, tuple(args.shape))]
    if args.dynamic:
        step = getattr(model.data_preprocessor, 'pad_size_divisor', 1) or 1
        checks.append((2, (args.shape[0] + 2 * max(step, 16), args.shape[1] + max(step, 16))))
    diffs = []
    for batch, shape in checks:
        diff, scale = compare(graph, args.out, image_input(model, args.image, shape, batch))
        diffs.append(diff)
        print(f'onnxruntime vs PyTorch on {osp.basename(args.image)}, {batch}x3x{shape[0]}x'
              f'{shape[1]}: max abs diff {diff:.3g} (outputs up to {scale:.3g})')
    return float(np.max(diffs))  # NaN if any is


def main(argv=None) -> None:
    try:
        args = parse_args(argv)
        check_args(args)
        from plugin.deployment import OnnxExportError
        try:
            worst = export(args)
        except OnnxExportError as err:
            raise UsageError(str(err)) from None
    except UsageError as err:
        print(f'export_onnx: error: {err}', file=sys.stderr)
        sys.exit(2)
    if args.verify and not worst <= args.tolerance:
        print(f'export_onnx: verify failed: max abs diff {worst:.3g} > {args.tolerance:g}',
              file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
