"""COCO AP per occlusion bucket of a results file (COCO json, or the pkl of tools/test.py --out).

    python tools/analysis/occlusion_eval.py GT_JSON RESULTS --iou-type bbox \
        --out report.json --plot occlusion_ap.png
    python tools/analysis/occlusion_eval.py GT_JSON --dataset-stats r_hist.png

report.json: {"buckets": [{"lo", "hi", "name", "num_images", "num_instances", "AP", "AP50",
"AP75", "APs", "APm", "APl", "AR1", ...}], "overall": {...}, ...}; null = no ground truth.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from plugin.evaluation.occlusion import (DEFAULT_BINS, OcclusionEvalError,  # noqa: E402
                                         bucket_ranges, evaluate_by_occlusion, format_report,
                                         image_occlusion_ratios, load_results)
from plugin.evaluation.results_io import load_detections, load_gt  # noqa: E402


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
    parser.add_argument('--out', help='write the report json here')
    parser.add_argument('--plot', help='write the AP-vs-occlusion plot (PNG) here')
    parser.add_argument('--title', help='title of the plot (default: the RESULTS file name)')
    parser.add_argument('--dataset-stats', nargs='?', const='', metavar='HIST_PNG',
                        help='print the histogram of r over GT_JSON (and plot it to HIST_PNG)')
    args = parser.parse_args(argv)
    if args.results is None and args.dataset_stats is None:
        parser.error('give RESULTS to evaluate, or --dataset-stats')
    return args


def dataset_stats(coco, args) -> str:
    ratios = image_occlusion_ratios(coco, overlap=args.overlap)
    rs = [r for r, _ in ratios.values()]
    lines = [f'occlusion ratio r over {len(rs)} images of {args.gt} ({args.overlap} overlap): '
             f'mean {sum(rs) / max(len(rs), 1):.3f}, max {max(rs, default=0):.3f}']
    for lo, hi in bucket_ranges(args.bins, args.cumulative):
        ids = [i for i, (r, _) in ratios.items() if lo <= r < hi]
        lines.append(f'  {lo:g} <= r < {hi:g}: {len(ids):6d} images, '
                     f'{sum(ratios[i][1] for i in ids):7d} instances')
    if args.dataset_stats:
        from plugin.visualization import plot_ratio_histogram
        plot_ratio_histogram(rs, args.bins, args.dataset_stats, title=osp.basename(args.gt))
        lines.append(f'histogram: {args.dataset_stats}')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        bucket_ranges(args.bins, args.cumulative)
        coco = load_gt(args.gt)
        if args.dataset_stats is not None:
            print(dataset_stats(coco, args))
        if args.results is None:
            return
        dets = load_detections(args.results, coco, args.iou_type)
        report = evaluate_by_occlusion(coco, load_results(coco, dets), args.iou_type,
                                       bins=args.bins, cumulative=args.cumulative,
                                       overlap=args.overlap, backend=args.backend)
    except OcclusionEvalError as e:
        sys.exit(f'occlusion_eval: error: {e}')
    report.update(gt=args.gt, results=args.results, bins=[b if math.isfinite(b) else None
                                                          for b in args.bins])
    print(format_report(report))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'report: {args.out}')
    if args.plot:
        from plugin.visualization import plot_occlusion_reports
        plot_occlusion_reports([report], args.plot, title=args.title or osp.basename(args.results))
        print(f'plot: {args.plot}')


if __name__ == '__main__':
    main()
