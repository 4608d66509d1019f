"""AP against occlusion ratio: one line per (IoU type, metric), one point per bucket."""
import os
import os.path as osp
from typing import Optional, Sequence


def plot_occlusion_reports(reports: Sequence[dict], out_file: str,
                           names: Sequence[str] = ('AP', 'AP50', 'AP75'),
                           title: Optional[str] = None) -> str:
    """Draw reports of :func:`plugin.evaluation.evaluate_by_occlusion` into a PNG.

    The x axis has one tick per bucket (labelled with its range and image count); a bucket without
    ground truth leaves a gap in the line; a dotted line marks the metric over all images.
    Returns ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    buckets = reports[0]['buckets']
    xs = list(range(len(buckets)))
    fig, ax = plt.subplots(figsize=(1.6 * len(buckets) + 3, 4.2), dpi=120)
    for report in reports:
        for name in names:
            ys = [float('nan') if b[name] is None else b[name] for b in report['buckets']]
            line, = ax.plot(xs, ys, marker='o', label=f"{report['iou_type']} {name}")
            if report['overall'][name] is not None:  # the same metric over all images
                ax.axhline(report['overall'][name], color=line.get_color(), ls=':', lw=1)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{b['name']}\n{b['num_images']} img" for b in buckets])
    ax.set_xlabel('occlusion ratio r = Σ overlap / Σ instance area' +
                  (' (cumulative)' if reports[0]['cumulative'] else ''))
    ax.set_ylabel('COCO AP')
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    plt.close(fig)
    return out_file


def plot_ratio_histogram(ratios: Sequence[float], bins: Sequence[float], out_file: str,
                         title: Optional[str] = None) -> str:
    """Histogram of per-image occlusion ratios, with the bucket edges marked."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    finite = [b for b in bins if b != float('inf')]
    top = max(max(ratios, default=1.0), finite[-1] * 1.25, 1e-3)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    ax.hist(ratios, bins=40, range=(0, top), color='tab:blue', alpha=0.8)
    for edge in finite:
        ax.axvline(edge, color='tab:red', lw=1, ls='--')
    ax.set_xlabel('occlusion ratio r')
    ax.set_ylabel('images')
    if title:
        ax.set_title(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    plt.close(fig)
    return out_file
