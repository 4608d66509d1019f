"""onnxruntime CPU latency of every family's backbone and of one detector per family, against the
same model in PyTorch eager and against mmdet's ResNet-50 (RetinaNet R-50-FPN for detectors)
exported the same way, all in one run.

    python tools/benchmark/bench_onnx.py [--size 224] [--det-size 256] [--repeat 5]
        [--threads 2] [--opset 17] [--only NAME ...] [--out FILE.md]

Each model is exported by ``plugin.deployment.export_onnx`` (static shape, batch 1; detectors as
their raw outputs, mmdet's ``tensor`` mode) and timed as an inference forward in PyTorch (eval,
``no_grad``) and in onnxruntime's CPU provider, in turns, with the same number of threads. The
table gives both medians, their ratio (ORT / PyTorch: below 1, the export is faster), the ORT time
against the baseline's ORT time, and the max abs difference of the outputs.
"""
import argparse
import os.path as osp
import platform
import sys
import tempfile
from typing import Callable, List, Tuple

import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [ROOT, osp.join(ROOT, 'tools', 'deployment')]

from onnx_graphs import RawOutputs  # noqa: E402
from run_all import trained_like  # noqa: E402
from timing import timed_in_turns  # noqa: E402

from plugin.deployment import export_onnx, max_abs_diff  # noqa: E402

R50_RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'  # in mmdet's own configs


def backbones() -> List[Tuple[str, Callable[[], nn.Module]]]:
    """(name, build) of each family's ImageNet-size backbone; the first is the baseline."""
    from mmdet.models.backbones import ResNet

    from plugin.backbones import DRResNet, DSCResNet, SKNet, TiedResNet
    return [('ResNet-50 (mmdet)', lambda: ResNet(50)),
            ('TiedResNet50 (TBC)', lambda: TiedResNet(50)),
            ('TiedResNet50-S (TBC)', lambda: TiedResNet(50, arch='S')),
            ('DR-ResNet-50 (DRConv, stages 2-4, m=8)', lambda: DRResNet(50)),
            ('DSC-ResNet-50 (DSC, stages 2-4)', lambda: trained_like(DSCResNet(50))),
            ('SKNet-50 (SK)', lambda: SKNet(50))]


def detectors() -> List[Tuple[str, str]]:
    """(name, config) of one RetinaNet per family; the first is the baseline."""
    study = osp.join(ROOT, 'configs', 'study')
    return [('RetinaNet R-50-FPN (mmdet)', R50_RETINANET)] + [
        (f'RetinaNet {name}, study size', osp.join(study, f'retinanet_{cfg}_fpn_occshapes.py'))
        for name, cfg in (('ResNet-18 tiny', 'r18-tiny'),
                          ('TiedResNet-14 tiny (TBC)', 'tiedresnet14-tiny'),
                          ('DR-ResNet-18 tiny (DRConv)', 'dr-r18-tiny'),
                          ('DSC-ResNet-18 tiny (DSC)', 'dsc-r18-tiny'),
                          ('SKNet-14 tiny (SK)', 'sknet14-tiny'))]


def build_detector(config: str) -> nn.Module:
    from mmengine.config import Config

    from plugin.analysis import build_model
    if config == R50_RETINANET:
        import mmdet
        cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', config))
        cfg.model.backbone.init_cfg = None  # no torchvision download
        cfg.custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
        return RawOutputs(trained_like(build_model(cfg)))
    return RawOutputs(trained_like(build_model(config)))


def measure(model: nn.Module, x: torch.Tensor, folder: str,
            args) -> Tuple[float, float, float, float]:
    """(PyTorch ms, onnxruntime ms, max abs diff, max abs output) of one inference of ``model``
    on ``x``."""
    import onnxruntime as ort
    model.eval()
    path = export_onnx(model, x, osp.join(folder, 'model.onnx'), opset=args.opset)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    with torch.no_grad():
        expected = model(x)
    diff = max_abs_diff(expected, session.run(None, feed))
    scale = max(float(t.abs().max()) for t in torch.utils._pytree.tree_leaves(expected))

    def eager():
        with torch.no_grad():
            model(x)

    t_torch, t_ort = timed_in_turns([eager, lambda: session.run(None, feed)], 'cpu',
                                    args.repeat, args.warmup)
    return t_torch, t_ort, diff, scale


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224, help='backbone input size')
    parser.add_argument('--det-size', type=int, default=256, help='detector input size')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2, help='threads of PyTorch and ORT')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--only', nargs='+', help='rows whose name contains one of these '
                        '(the baselines always run)')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    args = parser.parse_args(argv)
    if min(args.repeat, args.threads, args.size, args.det_size) < 1:
        parser.error('--repeat, --threads, --size and --det-size must be at least 1')
    torch.set_num_threads(args.threads)
    import onnxruntime as ort
    lines = [f'ONNX export, CPU {platform.processor() or platform.machine()}, {args.threads} '
             f'threads, torch {torch.__version__}, onnxruntime {ort.__version__}, opset '
             f'{args.opset}, batch 1, median of {args.repeat}; ORT x = ORT / PyTorch, vs base = '
             'ORT / the baseline\'s ORT, both timed in turns in this run.', '',
             '| model | input | PyTorch ms | ORT ms | ORT x | vs base | max abs diff | '
             'max abs output |', '|---|---|---:|---:|---:|---:|---:|---:|']
    groups = [(args.size, backbones()), (args.det_size, [
        (name, lambda c=cfg: build_detector(c)) for name, cfg in detectors()])]
    with tempfile.TemporaryDirectory() as folder:
        for size, rows in groups:
            for i, (name, build) in enumerate(rows):  # the first row is the baseline
                if i and args.only and not any(key in name for key in args.only):
                    continue
                torch.manual_seed(0)
                x = torch.randn(1, 3, size, size)
                t_torch, t_ort, diff, scale = measure(build(), x, folder, args)
                base = t_ort if i == 0 else base
                lines.append(f'| {name} | {size}x{size} | {t_torch:.1f} | {t_ort:.1f} | '
                             f'**{t_ort / t_torch:.2f}** | {t_ort / base:.2f} | {diff:.1e} | {scale:.1e} |')
                print(lines[-1] if len(lines) > 5 else '\n'.join(lines), flush=True)
    table = '\n'.join(lines) + '\n'
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    return table


if __name__ == '__main__':
    main()
