"""Draw every DRConv layer's guided mask over an image, one colour per region (paper Fig. 1).

    python tools/analysis/vis_drconv_regions.py CONFIG CHECKPOINT IMAGE --out DIR [--alpha 0.5]

Runs the config's model (mmdet or mmseg, by its default_scope) on IMAGE through its test pipeline
and writes DIR/{index}_{layer}.png for each DRConv layer and DIR/grid.png with all of them.
CHECKPOINT 'none' keeps the initial weights.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="a checkpoint file, or 'none'")
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--alpha', type=float, default=0.5, help='opacity of the colours')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)

    import mmcv
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import plugin  # noqa: F401  (registers DRConv and the backbones)
    from plugin.visualization import draw_region_masks, record_region_masks

    cfg = Config.fromfile(args.config)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if scope == 'mmseg':
        from mmseg.apis import inference_model, init_model
        model = init_model(cfg, checkpoint, device=args.device)
        infer = inference_model
    else:
        from mmdet.apis import inference_detector, init_detector
        model = init_detector(cfg, checkpoint, device=args.device)
        infer = inference_detector
    with record_region_masks(model) as masks:
        result = infer(model, args.image)
    meta = result.metainfo
    img_h, img_w = meta['img_shape'][:2]
    batch_h, batch_w = meta.get('batch_input_shape', meta.get('pad_shape', meta['img_shape']))[:2]
    image = mmcv.imread(args.image, channel_order='rgb')
    paths = draw_region_masks(image, masks, args.out, args.alpha,
                              content=(img_h / batch_h, img_w / batch_w))
    print(f'{len(paths) - 1} DRConv layers drawn into {args.out} (grid: {paths[-1]})')


if __name__ == '__main__':
    main()
