"""AP against occlusion ratio: one line per (IoU type, metric), one point per bucket."""
from typing import Optional, Sequence

from .figures import pyplot, save_figure


def plot_occlusion_reports(reports: Sequence[dict], out_file: str,
                           names: Sequence[str] = ('AP', 'AP50', 'AP75'),
                           title: Optional[str] = None) -> str:
    """Draw reports of :func:`plugin.evaluation.evaluate_by_occlusion` into a PNG.

    The x axis has one tick per bucket (labelled with its range and image count); a bucket without
    ground truth leaves a gap in the line; a dotted line marks the metric over all images.
    Returns ``out_file``.
    """
    plt = pyplot()

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
    return save_figure(fig, out_file)


def plot_ratio_histogram(ratios: Sequence[float], bins: Sequence[float], out_file: str,
                         title: Optional[str] = None) -> str:
    """Histogram of per-image occlusion ratios, with the bucket edges marked."""
    plt = pyplot()

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
    return save_figure(fig, out_file)


def plot_occlusion_study(rows: Sequence[dict], out_file: str, title: Optional[str] = None) -> str:
    """AP against occlusion bucket for several backbones: one panel per (detector, IoU type), one
    line per backbone at its mean over seeds, the band one standard deviation either side.

    ``rows`` are those of ``tools/study/occlusion_study.py``'s ``aggregate``: ``detector``,
    ``iou_type``, ``backbone``, ``metric``, and ``buckets`` with ``name``, ``num_images``,
    ``mean``, ``std``. Returns ``out_file``.
    """
    plt = pyplot()

    panels = sorted({(r['detector'], r['iou_type']) for r in rows},
                    key=lambda p: (p[0] != 'retinanet', p))
    backbones = sorted({r['backbone'] for r in rows})
    colours = {b: plt.get_cmap('tab10')(k % 10) for k, b in enumerate(backbones)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), dpi=120,
                             sharey=True, squeeze=False)
    for ax, (detector, iou_type) in zip(axes[0], panels):
        buckets = None
        for row in sorted(rows, key=lambda r: r['backbone']):
            if (row['detector'], row['iou_type']) != (detector, iou_type):
                continue
            buckets = row['buckets']
            xs = list(range(len(buckets)))
            mean = [float('nan') if b['mean'] is None else b['mean'] for b in buckets]
            std = [float('nan') if b['std'] is None else b['std'] for b in buckets]
            colour = colours[row['backbone']]
            ax.plot(xs, mean, marker='o', color=colour, label=row['backbone'])
            ax.fill_between(xs, [max(m - s, 0) for m, s in zip(mean, std)],
                            [m + s for m, s in zip(mean, std)], color=colour, alpha=0.15)
        ax.set_xticks(range(len(buckets)))
        ax.set_xticklabels([f"{b['name']}\n{b['num_images']} img" for b in buckets], fontsize=8)
        ax.set_xlabel('occlusion ratio r')
        ax.set_title(f'{detector}: {iou_type} {rows[0]["metric"]}')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f'COCO {rows[0]["metric"]} (mean ± std over seeds)')
    handles = [plt.Line2D([], [], color=colours[b], marker='o') for b in backbones]
    fig.legend(handles, backbones, loc='lower center', ncol=len(backbones), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, out_file)
