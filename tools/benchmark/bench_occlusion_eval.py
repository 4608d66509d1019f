"""Time of AP-by-occlusion evaluation: our evaluate-once design vs one COCOeval per bucket, and the
pycocotools vs faster-coco-eval backends (same numbers), on generated occlusion-shapes data.

    python tools/benchmark/bench_occlusion_eval.py [--images 300] [--size 256] [--repeat 3]
"""
import argparse
import contextlib
import io
import os.path as osp
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [ROOT, osp.join(ROOT, 'tests')]  # the plugin; the tests' synthetic detections

from pycocotools.cocoeval import COCOeval  # noqa: E402

from plugin.datasets.occlusion_shapes import make_dataset  # noqa: E402
from plugin.evaluation.cocoeval_subsets import load_results  # noqa: E402
from plugin.evaluation.occlusion import evaluate_by_occlusion, image_occlusion_ratios  # noqa: E402
from plugin.evaluation.results_io import load_gt  # noqa: E402
from plugin.structures.occlusion_ratio import DEFAULT_BUCKETS  # noqa: E402
from synthetic import synthetic_detections  # noqa: E402
from timing import timed_in_turns  # noqa: E402


def per_bucket_cocoeval(coco, coco_dt, iou_type):
    """The straightforward way: a fresh COCOeval for every bucket and for all images."""
    ratios = image_occlusion_ratios(coco)
    subsets = [[i for i, (r, _) in ratios.items() if lo <= r < hi]
               for lo, hi in DEFAULT_BUCKETS.ranges] + [coco.getImgIds()]
    for ids in subsets:
        ev = COCOeval(coco, coco_dt, iou_type)
        ev.params.imgIds = ids
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=300)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_dataset(tmp, 0, args.images, args.size, seed=0)
        coco = load_gt(paths['val'])
    print(f'{args.images} images, {len(coco.dataset["annotations"])} instances, '
          f'{args.size}x{args.size}; median of {args.repeat}, the methods in turns\n')
    print('| iou type | method | seconds | ratio |')
    print('|---|---|---:|---:|')
    for iou_type in ('bbox', 'segm'):
        coco_dt = load_results(coco, synthetic_detections(coco, iou_type))
        rows = [('one COCOeval per bucket + all (pycocotools)',
                 lambda: per_bucket_cocoeval(coco, coco_dt, iou_type)),
                ('evaluate once, accumulate per bucket (pycocotools)',
                 lambda: evaluate_by_occlusion(coco, coco_dt, iou_type))]
        try:
            import faster_coco_eval  # noqa: F401
            rows.append(('faster-coco-eval backend', lambda: evaluate_by_occlusion(
                coco, coco_dt, iou_type, backend='faster-coco-eval')))
        except ImportError:
            pass
        times = [ms / 1e3 for ms in timed_in_turns([fn for _, fn in rows], 'cpu', args.repeat)]
        for (name, _), t in zip(rows, times):
            print(f'| {iou_type} | {name} | {t:.3f} | {t / times[0]:.2f}x |')


if __name__ == '__main__':
    main()
