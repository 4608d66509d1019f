"""Filter similarity of backbones (TBC paper, Fig. 9): per-layer histograms of the pairwise cosine
similarity of filters (weights, or guided-backprop patterns on images), one curve per model.

    python tools/analysis/filter_similarity.py \
        --model ResNet-50 configs/tbc/mask-rcnn_r50-tiedse-b8_fpn_1x_coco.py r50.pth \
        --model TiedResNet50 configs/tbc/mask-rcnn_tiedresnet50_fpn_1x_coco.py tied.pth \
        --mode weights guided --images data/coco/val2017 --out work_dirs/filter_similarity.png

Each model is a config (its backbone is analysed) and an optional checkpoint of the whole model.
Layers default to the 3x3 stage (``conv2``) of the last block of every stage. With several modes,
``--out x.png`` becomes ``x_weights.png``, ``x_guided.png``. A markdown table of the means is
printed.
"""
import argparse
import glob
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.analysis.complexity import build_model, find_backbone  # noqa: E402
from plugin.utils import CheckpointError  # noqa: E402
from plugin.visualization.filter_similarity import (default_layers,  # noqa: E402
                                                    guided_backprop_patterns, pairwise_cosine,
                                                    plot_similarity_histograms,
                                                    weight_similarities)

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', nargs='+', action='append', required=True,
                        metavar='NAME CONFIG [CHECKPOINT]', help='repeat for every model')
    parser.add_argument('--mode', nargs='+', choices=['weights', 'guided'], default=['weights'])
    parser.add_argument('--layers', nargs='+', help='backbone module names (default: each '
                        "stage's last conv2); the same list is used for every model")
    parser.add_argument('--images', nargs='+', default=[],
                        help='image files or folders (guided mode)')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--size', type=int, default=224, help='images are resized to size x size')
    parser.add_argument('--max-filters', type=int, default=64,
                        help='channels per layer in guided mode (random subset)')
    parser.add_argument('--bins', type=int, default=40)
    parser.add_argument('--out', required=True, help='PNG file')
    args = parser.parse_args(argv)
    for model in args.model:
        if len(model) not in (2, 3):
            parser.error(f'--model takes NAME CONFIG [CHECKPOINT], got {model}')
    if 'guided' in args.mode and not args.images:
        parser.error('--mode guided needs --images')
    return args


def load_backbone(config, checkpoint=None):
    """The backbone of ``config`` (with ``checkpoint`` loaded into the whole model) and the
    model's input normalisation ``(mean, std, bgr_to_rgb)``."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    cfg = Config.fromfile(config)
    model = build_model(cfg)
    if checkpoint:
        try:
            load_checkpoint(model, checkpoint, map_location='cpu')
        except CheckpointError as err:
            sys.exit(f'filter_similarity: error: {err}')
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    norm = (pre.get('mean', [123.675, 116.28, 103.53]), pre.get('std', [58.395, 57.12, 57.375]),
            pre.get('bgr_to_rgb', True))
    return find_backbone(model), norm


def load_images(paths, num, size, norm):
    """``[num, 3, size, size]`` normalised as the model's data preprocessor does."""
    import mmcv
    files = []
    for path in paths:
        files += sorted(f for f in glob.glob(osp.join(path, '*')) if f.lower().endswith(
            IMAGE_EXTS)) if osp.isdir(path) else [path]
    if not files:
        raise FileNotFoundError(f'no images in {paths}')
    mean, std, bgr_to_rgb = norm
    batch = []
    for f in files[:num]:
        img = mmcv.imresize(mmcv.imread(f), (size, size))  # BGR
        img = torch.from_numpy(img[..., ::-1].copy() if bgr_to_rgb else img).float()
        batch.append(((img - torch.tensor(mean)) / torch.tensor(std)).permute(2, 0, 1))
    return torch.stack(batch)


def main(argv=None):
    args = parse_args(argv)
    results = {mode: {} for mode in args.mode}
    layer_names = None
    for name, config, *ckpt in args.model:
        backbone, norm = load_backbone(config, ckpt[0] if ckpt else None)
        layers = args.layers or default_layers(backbone)
        layer_names = layer_names or layers
        modules = dict(backbone.named_modules())
        images = load_images(args.images, args.num_images, args.size, norm) \
            if 'guided' in args.mode else None
        for mode in args.mode:
            results[mode][name] = {}
            for layer in layers:
                if layer not in modules:
                    raise KeyError(f'{name}: the backbone has no module {layer!r}')
                if mode == 'weights':
                    sims = weight_similarities(modules[layer])
                else:
                    sims = pairwise_cosine(guided_backprop_patterns(
                        backbone, modules[layer], images, args.max_filters))
                results[mode][name][layer] = sims
    stem, ext = osp.splitext(args.out)
    print('| mode | model | layer | pairs | mean | std |\n|---|---|---|---|---|---|')
    for mode, per_model in results.items():
        out = args.out if len(args.mode) == 1 else f'{stem}_{mode}{ext}'
        title = f'pairwise cosine similarity of filters ({mode})'
        plot_similarity_histograms(per_model, out, args.bins, title, layer_names)
        for name, layers in per_model.items():
            for layer, sims in layers.items():
                print(f'| {mode} | {name} | {layer} | {sims.numel()} | {sims.mean():.3f} | '
                      f'{sims.std():.3f} |')
        print(f'wrote {out}', file=sys.stderr)


if __name__ == '__main__':
    main()
