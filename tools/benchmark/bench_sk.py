"""Time and memory of SKNet-50 vs mmdet's ResNeXt-50 (32x4d), and SKFPN vs FPN, in one run.

    python tools/benchmark/bench_sk.py [--device cuda] [--batch 2] [--size 224] [--repeat 5]

Prints a markdown table: median time of an inference forward (eval, no grad) and of a training
step (forward + backward), the activations autograd saves for backward, and on CUDA the peak
memory of a training step, each also as a ratio (x) to the first row of its group. The models of
a group are timed in turns (one call each per round), so a busy machine slows them alike.
The necks run on ResNet-50 feature shapes (strides 4-32) of a ``--neck-size`` image with
RetinaNet's settings (256 channels, 5 levels, extra convs on the input).
"""
import argparse
import os.path as osp
import sys

import torch
from mmdet.models.backbones import ResNeXt
from mmdet.models.necks import FPN

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.backbones import SKNet  # noqa: E402
from plugin.necks import SKFPN  # noqa: E402
from timing import saved_activation_mb, timed_steps  # noqa: E402

NECK_IN = [256, 512, 1024, 2048]


def groups(args):
    """(group, inputs, [(name, builder), ...]); the first model of a group is the baseline."""
    neck = dict(in_channels=NECK_IN, out_channels=256, num_outs=5, add_extra_convs='on_input')
    image = torch.randn(args.batch, 3, args.size, args.size)
    feats = [torch.randn(args.batch, c, args.neck_size >> (i + 2), args.neck_size >> (i + 2))
             for i, c in enumerate(NECK_IN)]
    return [
        ('backbone', image, [('ResNeXt-50 32x4d',
                              lambda: ResNeXt(depth=50, groups=32, base_width=4)),
                             ('SKNet-50', lambda: SKNet(50))]),
        ('neck', feats, [('FPN', lambda: FPN(**neck)), ('SKFPN', lambda: SKFPN(**neck)),
                         ('SKFPN sk_fusion', lambda: SKFPN(**neck, sk_fusion=True))]),
    ]


def train_step(model, inputs):
    sum(o.float().mean() for o in model(inputs)).backward()


def peak_mb(model, inputs, device):
    """Peak CUDA memory of a training step above what was allocated before it."""
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    train_step(model, inputs)
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=224, help='backbone input size')
    parser.add_argument('--neck-size', type=int, default=512, help='image size of neck inputs')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args()
    if args.batch < 2:
        parser.error('--batch must be at least 2: the BatchNorm of the SK fuse fc sees one value '
                     'per image and channel, and needs two in training')
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    cuda = device.type == 'cuda'
    rows = []
    for group, inputs, builders in groups(args):
        torch.manual_seed(0)
        models = [build().to(device) for _, build in builders]
        inputs = inputs.to(device) if torch.is_tensor(inputs) else [x.to(device) for x in inputs]
        infer = timed_steps(models, inputs, device, args.repeat, args.warmup, train=False)
        train = timed_steps(models, inputs, device, args.repeat, args.warmup, train=True)
        for model in models:
            model.train()  # mmdet's ResNet.train() returns None: not chained
        results = [dict(infer=infer[j], train=train[j], saved=saved_activation_mb(model, inputs))
                   for j, model in enumerate(models)]
        for result, model in zip(results, models):
            if cuda:
                result['peak'] = peak_mb(model, inputs, device)
        rows += [(group, name, result, results[0])
                 for (name, _), result in zip(builders, results)]
        del models
    device_name = torch.cuda.get_device_name(device) if cuda else 'CPU'
    print(f'\n{device_name}, torch {torch.__version__}, batch {args.batch}, backbone '
          f'{args.size}x{args.size}, necks on a {args.neck_size}x{args.neck_size} image, median '
          f'of {args.repeat}\n')
    keys = ['infer', 'train', 'saved'] + (['peak'] if cuda else [])
    head = '| part | model | infer ms | x | train ms | x | saved MB | x |'
    head += ' peak MB | x |' if cuda else ''
    print(head)
    print('|---|---|' + '---:|' * 2 * len(keys))
    for group, name, row, base in rows:
        cells = [group, name]
        for k in keys:
            cells += [f'{row[k]:.1f}', f'{row[k] / base[k]:.2f}']
        print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
