"""COCO AP per occlusion bucket of a results file (COCO json, or the pkl of tools/test.py --out).

    python tools/analysis/occlusion_eval.py GT_JSON RESULTS --iou-type bbox \
        --out report.json --plot occlusion_ap.png
    python tools/analysis/occlusion_eval.py GT_JSON --dataset-stats r_hist.png

report.json: {"buckets": [{"lo", "hi", "name", "num_images", "num_instances", "AP", "AP50",
"AP75", "APs", "APm", "APl", "AR1", ...}], "overall": {...}, ...}; null = no ground truth.
A pkl is evaluated on the images of its entries; a json on every image of GT_JSON (pycocotools'
meaning), or with --only-result-images on those it has detections for.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.evaluation.cocoeval_subsets import load_results  # noqa: E402
from plugin.evaluation.occlusion import (check_masks, evaluate_by_occlusion,  # noqa: E402
                                         format_report, image_occlusion_ratios)
from plugin.evaluation.results_io import load_detections, load_gt  # noqa: E402
from plugin.structures.occlusion_ratio import (DEFAULT_BINS, OcclusionEvalError,  # noqa: E402
                                               parse_bins)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('gt', metavar='GT_JSON', help='COCO annotation file')
    parser.add_argument('results', metavar='RESULTS', nargs='?',
                        help='COCO results .json or tools/test.py --out .pkl')
    parser.add_argument('--iou-type', choices=['bbox', 'segm'], default='bbox')
    parser.add_argument('--bins', type=float, nargs='+', default=list(DEFAULT_BINS),
                        help='bucket edges of r (default: 0 0.2 0.4 0.6 0.8 inf)')
    parser.add_argument('--cumulative', action='store_true', help='buckets r >= edge')
    parser.add_argument('--overlap', choices=['box', 'mask'], default='box',
                        help='areas that define r')
    parser.add_argument('--backend', choices=['pycocotools', 'faster-coco-eval'],
                        default='pycocotools')
    parser.add_argument('--only-result-images', action='store_true',
                        help='a results json covers only the images it has detections on '
                        '(default: every image of GT_JSON, as pycocotools; a pkl always covers '
                        'the images of its entries)')
    parser.add_argument('--out', help='write the report json here')
    parser.add_argument('--plot', help='write the AP-vs-occlusion plot (PNG) here')
    parser.add_argument('--title', help='title of the plot (default: the RESULTS file name)')
    parser.add_argument('--dataset-stats', nargs='?', const='', metavar='HIST_PNG',
                        help='print the histogram of r over GT_JSON (and plot it to HIST_PNG)')
    args = parser.parse_args(argv)
    if args.results is None and args.dataset_stats is None:
        parser.error('give RESULTS to evaluate, or --dataset-stats')
    return args


def dataset_stats(coco, args, buckets) -> str:
    ratios = image_occlusion_ratios(coco, overlap=args.overlap)
    rs = [r for r, _ in ratios.values()]
    lines = [f'occlusion ratio r over {len(rs)} images of {args.gt} ({args.overlap} overlap): '
             f'mean {sum(rs) / max(len(rs), 1):.3f}, max {max(rs, default=0):.3f}']
    for lo, hi in buckets.ranges:
        ids = [i for i, (r, _) in ratios.items() if lo <= r < hi]
        lines.append(f'  {lo:g} <= r < {hi:g}: {len(ids):6d} images, '
                     f'{sum(ratios[i][1] for i in ids):7d} instances')
    if args.dataset_stats:
        from plugin.visualization import plot_ratio_histogram
        write(args.dataset_stats, '--dataset-stats', lambda p: plot_ratio_histogram(
            rs, args.bins, p, title=osp.basename(args.gt)))
        lines.append(f'histogram: {args.dataset_stats}')
    return '\n'.join(lines)


def write(path: str, what: str, write_fn) -> None:
    """Run ``write_fn(path)``; an unwritable path is a user error, not a traceback."""
    try:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        write_fn(path)
    except OSError as e:
        raise OcclusionEvalError(f'cannot write {what} {path}: {e.strerror or e}') from None


def main(argv=None):
    args = parse_args(argv)
    try:
        buckets = parse_bins(args.bins, args.cumulative)
        coco = load_gt(args.gt)
        if args.dataset_stats is not None:
            if args.overlap == 'mask':
                check_masks(coco, None, '--overlap mask', crowd=False, source=args.gt)
            print(dataset_stats(coco, args, buckets))
        if args.results is None:
            return
        dets, img_ids = load_detections(args.results, coco, args.iou_type,
                                        args.only_result_images, gt_path=args.gt)
        if args.overlap == 'mask':
            check_masks(coco, img_ids, '--overlap mask', crowd=False, source=args.gt)
        if args.iou_type == 'segm':
            check_masks(coco, img_ids, '--iou-type segm', source=args.gt)
        if not dets:
            if img_ids == []:
                raise OcclusionEvalError(f'{args.results} holds no detections and names no '
                                         'image: nothing to evaluate')
            print(f'occlusion_eval: warning: {args.results} holds no detections: AP is 0 in '
                  'every bucket', file=sys.stderr)
        report = evaluate_by_occlusion(coco, load_results(coco, dets), args.iou_type, buckets,
                                       overlap=args.overlap, img_ids=img_ids,
                                       backend=args.backend)
        report.update(gt=args.gt, results=args.results, bins=[b if math.isfinite(b) else None
                                                              for b in args.bins])
        print(format_report(report))
        if args.out:
            def dump(path):
                with open(path, 'w') as f:
                    json.dump(report, f, indent=1)

            write(args.out, '--out', dump)
            print(f'report: {args.out}')
        if args.plot:
            from plugin.visualization import plot_occlusion_reports
            title = args.title or osp.basename(args.results)
            write(args.plot, '--plot', lambda p: plot_occlusion_reports([report], p, title=title))
            print(f'plot: {args.plot}')
    except OcclusionEvalError as e:
        sys.exit(f'occlusion_eval: error: {e}')


if __name__ == '__main__':
    main()
