"""Time Dynamic Stride Convolution against the plain strided convolution, in one run.

    python tools/benchmark/bench_dsc.py [--device cuda] [--batch 2] [--size 256] [--repeat 5]
                                        [--groups paths layer backbone]

Prints markdown tables of median milliseconds, each also as a ratio (x) to the first row of its
group (measured in the same run, the rows taking turns so a busy machine slows them alike):

* ``paths``: exact implementations of eq. D1 on ResNet-50's strided convs at ``--size`` (forward +
  backward, the centres requiring grad): ours (one weighted gather of channel rows with
  ``embedding_bag`` + one GEMM, custom backward), the same gather with torch's own
  ``embedding_bag`` backward, ours for few channels (all taps sampled with one ``grid_sample`` + a
  conv of stride K), one ``grid_sample`` per tap, and mmcv's ``DeformConv2d`` with the
  displacement repeated for each tap.
* ``layer``: ``DynamicStrideConv2d`` (offset branch included) vs ``nn.Conv2d``, training step and
  inference, on the same shapes.
* ``backbone``: mmdet ResNet-50 vs DSC-ResNet-50 (stages 2-4, then also the stem), and the
  segmentation layout ResNet-50-D8 (deep stem, output stride 8) vs its DSC version; training step
  (forward + backward), inference, and the activations saved for backward.
"""
import argparse
import contextlib
import itertools
import os.path as osp
import sys

import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNet
from mmengine.logging import MMLogger

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import plugin.layers.dynamic_stride_conv as dsc_module  # noqa: E402
from plugin.backbones import DSCResNet  # noqa: E402
from plugin.layers import DynamicStrideConv2d, dsc_conv2d  # noqa: E402
from plugin.layers.dynamic_stride_conv import grid_centres  # noqa: E402
from timing import saved_activation_mb, timed_in_turns, timed_steps  # noqa: E402


@contextlib.contextmanager
def forced(path):
    """Run dsc_conv2d through one implementation: 'gather', 'grid_sample' or 'torch_backward'."""
    threshold, gather = dsc_module.GATHER_MIN_CHANNELS, dsc_module._BilinearGather

    class TorchBackward:  # the same forward, torch's generic embedding_bag backward
        @staticmethod
        def apply(rows, weights, idx):
            offsets = torch.arange(0, idx.numel(), 4, device=idx.device)
            return F.embedding_bag(idx, rows, offsets, mode='sum', per_sample_weights=weights)

    dsc_module.GATHER_MIN_CHANNELS = 10**9 if path == 'grid_sample' else 0
    if path == 'torch_backward':
        dsc_module._BilinearGather = TorchBackward
    try:
        yield
    finally:
        dsc_module.GATHER_MIN_CHANNELS, dsc_module._BilinearGather = threshold, gather


def per_tap_grid_sample(x, weight, positions):
    """Eq. D1 as K*K grid_samples (one per tap) and 1x1 convs."""
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    out = 0
    for i in range(kh):
        for j in range(kw):
            px = positions[..., 0] + j - (kw - 1) / 2
            py = positions[..., 1] + i - (kh - 1) / 2
            grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], -1)
            tap = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
            out = out + F.conv2d(tap, weight[:, :, i:i + 1, j:j + 1])
    return out


def mmcv_deform(x, weight, positions, plain, stride, padding):
    """mmcv DeformConv2d with the displacement repeated for every tap."""
    from mmcv.ops import deform_conv2d
    k = weight.shape[-1] * weight.shape[-2]
    offset = (positions - plain).flip(-1).permute(0, 3, 1, 2).repeat(1, k, 1, 1).contiguous()
    return deform_conv2d(x, offset, weight, stride=stride, padding=padding)


def resnet50_shapes(args):
    """(name, in_channels, out_channels, kernel, input size) of ResNet-50's strided convs."""
    size = args.size
    return [s for s in [('stem 7x7 3->64', 3, 64, 7, size),
            ('layer2 3x3 128->128', 128, 128, 3, size // 4),
            ('layer2 1x1 256->512 (shortcut shape)', 256, 512, 1, size // 4),
            ('layer3 3x3 256->256', 256, 256, 3, size // 8),
            ('layer4 3x3 512->512', 512, 512, 3, size // 16)]
            if not args.convs or any(c in s[0] for c in args.convs)]


def table(title, header, rows):
    print(f'\n### {title}\n')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')


def group_paths(args, device):
    rows = []
    for name, cin, cout, k, size in resnet50_shapes(args):
        torch.manual_seed(0)
        pad = k // 2
        x = torch.randn(args.batch, cin, size, size, device=device, requires_grad=cin > 3)
        weight = torch.randn(cout, cin, k, k, device=device, requires_grad=True)
        ho = (size - 1) // 2 + 1
        c = grid_centres(ho, k, 2, pad, 1, device)
        plain = torch.stack(torch.meshgrid(c, c, indexing='xy'), -1).expand(args.batch, ho, ho, 2)
        delta = (torch.rand(args.batch, ho, ho, 2, device=device) - 0.5)  # within reach
        positions = (plain + delta).clamp(0, size - 1).requires_grad_()
        grad = torch.randn(args.batch, cout, ho, ho, device=device)

        def step(fn):
            return lambda: torch.autograd.backward(fn(), grad)

        def ours(path):
            def run():
                with forced(path):
                    return dsc_conv2d(x, weight, None, positions)
            return run

        candidates = [('conv2d (plain, stride 2)', lambda: F.conv2d(x, weight, None, 2, pad)),
                      ('DSC gather + GEMM (ours)', ours('gather')),
                      ('DSC gather, torch embedding_bag backward', ours('torch_backward')),
                      ('DSC grid_sample all taps + conv stride K (ours, < 16 channels)',
                       ours('grid_sample')),
                      ('grid_sample per tap', lambda: per_tap_grid_sample(x, weight, positions))]
        if not args.no_mmcv:
            candidates.append(('mmcv DeformConv2d, offset repeated per tap',
                               lambda: mmcv_deform(x, weight, positions, plain, 2, pad)))
        ms = timed_in_turns([step(fn) for _, fn in candidates], device, args.repeat, args.warmup)
        for (impl, _), t in zip(candidates, ms):
            rows.append([name, impl, f'{t:.1f}', f'{t / ms[0]:.2f}'])
    table(f'paths: forward + backward, batch {args.batch}, ResNet-50 shapes at {args.size}px',
          ['conv', 'implementation', 'ms', 'x conv'], rows)


def group_layer(args, device):
    rows = []
    for (name, cin, cout, k, size), layout in itertools.product(
            resnet50_shapes(args), ('NCHW', 'channels-last')):
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(cin, cout, k, 2, k // 2, bias=False).to(device)
        dsc = DynamicStrideConv2d(cin, cout, k, 2, k // 2, bias=False).to(device)
        with torch.no_grad():
            dsc.conv_offset.weight.normal_(std=0.01)  # trained-like: centres off the grid
        x = torch.randn(args.batch, cin, size, size, device=device)
        if layout == 'channels-last':
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(cin > 3)
        grad = torch.randn(args.batch, cout, (size - 1) // 2 + 1, (size - 1) // 2 + 1,
                           device=device)
        t = timed_steps([conv, dsc], x, device, args.repeat, args.warmup, True, grad) + \
            timed_steps([conv, dsc], x, device, args.repeat, args.warmup, False)
        rows.append([name, layout, f'{t[0]:.1f}', f'{t[1]:.1f}', f'**{t[1] / t[0]:.2f}**',
                     f'{t[2]:.1f}', f'{t[3]:.1f}', f'{t[3] / t[2]:.2f}'])
    table(f'layer: DynamicStrideConv2d (offset branch included) vs nn.Conv2d, batch {args.batch}'
          f', ResNet-50 shapes at {args.size}px',
          ['conv', 'input', 'train conv ms', 'train DSC ms', 'train x', 'infer conv ms',
           'infer DSC ms', 'infer x'], rows)


def group_backbone(args, device):
    d8 = dict(deep_stem=True, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    groups = [
        ('detection', [('ResNet-50', lambda: ResNet(50)),
                       ('DSC-ResNet-50 (stages 2-4)', lambda: DSCResNet(50)),
                       ('DSC-ResNet-50 (stem + stages 2-4)',
                        lambda: DSCResNet(50, dsc_stem=True))]),
        ('segmentation (D8)', [
            ('ResNet-50-D8', lambda: ResNet(50, **d8)),
            ('DSC-ResNet-50-D8 (stage 2)',
             lambda: DSCResNet(50, stage_with_dsc=(False, True, False, False), **d8)),
            ('DSC-ResNet-50-D8 (stem + stage 2)',
             lambda: DSCResNet(50, stage_with_dsc=(False, True, False, False), dsc_stem=True,
                               **d8))]),
    ]
    rows = []
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    for group, builders in groups:
        torch.manual_seed(0)
        models = [build().to(device) for _, build in builders]
        for m in models:
            m.init_weights()
            for layer in m.modules():
                if isinstance(layer, DynamicStrideConv2d):
                    torch.nn.init.normal_(layer.conv_offset.weight, std=0.01)
        t_train = timed_steps(models, x, device, args.repeat, args.warmup, train=True)
        t_infer = timed_steps(models, x, device, args.repeat, args.warmup, train=False)
        for m in models:
            m.train()
        mem = [saved_activation_mb(m, x) for m in models]
        for (name, _), tr, ti, mb in zip(builders, t_train, t_infer, mem):
            rows.append([group, name, f'{tr:.0f}', f'**{tr / t_train[0]:.2f}**', f'{ti:.0f}',
                         f'{ti / t_infer[0]:.2f}', f'{mb:.0f}', f'{mb / mem[0]:.2f}'])
    table(f'backbone: batch {args.batch}, {args.size}x{args.size}',
          ['layout', 'backbone', 'train ms', 'train x', 'infer ms', 'infer x', 'saved MB',
           'saved x'], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=256, help='image size (ResNet-50 input)')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--groups', nargs='+', default=['paths', 'layer', 'backbone'],
                        choices=['paths', 'layer', 'backbone'])
    parser.add_argument('--no-mmcv', action='store_true', help="skip mmcv's DeformConv2d")
    parser.add_argument('--convs', nargs='+',
                        help='only the convs whose name contains one of these')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    args = parser.parse_args()
    MMLogger.get_instance('mmengine', log_level='WARNING')  # no per-parameter init report
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'{torch.get_num_threads()} CPU threads'
    print(f'device {device} ({where}), torch {torch.__version__}')
    for group in args.groups:
        globals()[f'group_{group}'](args, device)


if __name__ == '__main__':
    main()
