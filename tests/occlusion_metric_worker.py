"""Run by tests/test_occlusion_metric.py: OcclusionCocoMetric in 2 gloo processes, each with its
share of the samples as mmengine's DefaultSampler deals them (the last one padded with the first
sample); each rank writes the metrics it returns to OUT.rank{0,1}.

    python tests/occlusion_metric_worker.py GT_JSON IMG_IDS_JSON OUT
"""
import datetime
import json
import socket
import sys

import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def worker(rank: int, gt: str, img_ids: list, out: str, port: int) -> None:
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=120))
    from test_occlusion_metric import data_samples, run_metric

    from plugin.evaluation import OcclusionCocoMetric
    from plugin.evaluation.results_io import load_gt
    samples = data_samples(load_gt(gt), img_ids)[0]
    padded = samples + samples[:-len(samples) % WORLD]
    metrics = run_metric(OcclusionCocoMetric(ann_file=gt), padded[rank::WORLD], len(samples))
    with open(f'{out}.rank{rank}', 'w') as f:
        json.dump(metrics, f)
    # both ranks past their last collective before gloo tears down: a rank that destroys its
    # group while its peer still talks aborts ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], port),
             nprocs=WORLD)
