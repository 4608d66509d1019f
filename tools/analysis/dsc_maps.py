"""Inter-layer interpretability maps of a DSC model on one image (no backward pass).

    python tools/analysis/dsc_maps.py CONFIG CHECKPOINT IMAGE --out DIR [--compare CHECKPOINT2]

Runs the config's test pipeline on IMAGE and one backbone forward, maps the kernel centres of every
DSC layer to image pixels through the preceding layers (plugin/models/dsc_tracer.py, eq. M1)
and writes, in DIR:
  dsc_maps.png       one panel per DSC layer: relative sampling density over the image + centres
  dsc_maps_diff.png  with --compare: density of CHECKPOINT minus that of CHECKPOINT2, per layer
  dsc_maps.json      per layer: name, stride, grid, mean/max displacement (image pixels), share of
                     centres in each image quadrant; the cost of the maps relative to the forward
CHECKPOINT may be 'none' (the config's initial weights: DSC then samples the plain grid).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.analysis import build_model, find_backbone  # noqa: E402
from plugin.models.dsc_tracer import DSCTracer  # noqa: E402
from plugin.utils import CheckpointError  # noqa: E402
from plugin.visualization.dsc_maps import plot_dsc_maps, sampling_density  # noqa: E402
from plugin.visualization.figures import pyplot  # noqa: E402


def traced_maps(backbone, inputs, repeat: int = 3):
    """Trace one forward (no grad) and time it against building the maps from its records.

    Returns the samplings and ``dict(forward_ms, positions_ms, density_ms, ratio)``, medians over
    ``repeat`` runs: ``positions_ms`` composes the position maps (eq. M1), ``density_ms`` computes
    every layer's density map; ``ratio`` is their sum over the forward.
    """
    times = {'forward_ms': [], 'positions_ms': [], 'density_ms': []}
    for _ in range(repeat):
        with torch.no_grad(), DSCTracer(backbone) as tracer:
            start = time.perf_counter()
            backbone(inputs)
            mid = time.perf_counter()
            samplings = tracer.sampling()
            end = time.perf_counter()
            for s in samplings:
                sampling_density(s.positions[0], s.grid[0], s.stride, inputs.shape[-2:])
            for key, t in zip(times, (mid - start, end - mid, time.perf_counter() - end)):
                times[key].append(t * 1e3)
    cost = {key: float(np.median(t)) for key, t in times.items()}
    cost['ratio'] = (cost['positions_ms'] + cost['density_ms']) / cost['forward_ms']
    return samplings, cost


def load_input(cfg, model, image: str):
    """The image through the config's test pipeline (annotations dropped) and the preprocessor."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = [t for t in cfg.test_dataloader.dataset.pipeline if 'Annotations' not in t['type']]
    data = Compose(pipeline)(dict(img_path=image, img_id=0))
    inputs = model.data_preprocessor(pseudo_collate([data]), False)['inputs']
    rgb = data['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # packed images are BGR
    canvas = np.zeros((*inputs.shape[-2:], 3), np.uint8)  # the batch input is padded bottom-right
    canvas[:rgb.shape[0], :rgb.shape[1]] = rgb
    return inputs, canvas


def layer_stats(s, shape):
    pos, grid = s.positions[0], s.grid[0]
    shift = (pos - grid).norm(dim=-1)
    h, w = shape
    x, y = pos[..., 0].flatten(), pos[..., 1].flatten()
    quads = [((x < w / 2) & (y < h / 2)), ((x >= w / 2) & (y < h / 2)),
             ((x < w / 2) & (y >= h / 2)), ((x >= w / 2) & (y >= h / 2))]
    return dict(name=s.name, stride=s.stride, grid=list(pos.shape[:2]),
                mean_displacement_px=round(shift.mean().item(), 3),
                max_displacement_px=round(shift.max().item(), 3),
                quadrant_share=[round(q.float().mean().item(), 4) for q in quads])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for the initial weights")
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--compare', help='a second checkpoint: also draw the density difference')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median)')
    args = parser.parse_args(argv)

    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    plt = pyplot()
    cfg = Config.fromfile(args.config)

    def run(checkpoint):
        model = build_model(cfg).to(args.device)  # fresh: 'none' means the initial weights
        if checkpoint.lower() != 'none':
            try:
                load_checkpoint(model, checkpoint, map_location=args.device, logger='silent')
            except CheckpointError as err:
                sys.exit(f'dsc_maps: error: {err}')
        inputs, image = load_input(cfg, model, args.image)
        return traced_maps(find_backbone(model), inputs.to(args.device), args.repeat), inputs, image

    (samplings, cost), inputs, image = run(args.checkpoint)
    if not samplings:
        sys.exit(f'dsc_maps: error: {args.config} has no DSC layer in its backbone')
    os.makedirs(args.out, exist_ok=True)
    shape = tuple(inputs.shape[-2:])
    name = osp.basename(args.image)
    plt.close(plot_dsc_maps(image, samplings, osp.join(args.out, 'dsc_maps.png'),
                            title=f'{name}: sampling density of each DSC layer '
                                  '(1 = plain strided conv)'))
    report = dict(config=args.config, checkpoint=args.checkpoint, image=args.image,
                  input_shape=list(shape), cost=cost,
                  layers=[layer_stats(s, shape) for s in samplings])
    if args.compare:
        (others, _), _, _ = run(args.compare)
        plt.close(plot_dsc_maps(image, samplings, osp.join(args.out, 'dsc_maps_diff.png'),
                                compare=others, title=f'{name}: density of '
                                f'{osp.basename(args.checkpoint)} minus '
                                f'{osp.basename(args.compare)}'))
        report['compare'] = dict(checkpoint=args.compare,
                                 layers=[layer_stats(s, shape) for s in others])
    with open(osp.join(args.out, 'dsc_maps.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print(f"{len(samplings)} DSC layers -> {args.out}/dsc_maps.png; image positions "
          f"{cost['positions_ms']:.1f} ms + densities {cost['density_ms']:.1f} ms = "
          f"{cost['ratio']:.3f} x one backbone forward ({cost['forward_ms']:.1f} ms)")


if __name__ == '__main__':
    main()
