"""plugin.visualization.figures: what every drawing shares (pyplot without a display, saving)."""
import os.path as osp

from plugin.visualization.figures import pyplot, save_figure
from plugin.visualization.occlusion_plot import plot_ratio_histogram


def test_save_figure_makes_the_folder_writes_and_closes(tmp_path):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = str(tmp_path / 'a' / 'b' / 'line.png')
    assert save_figure(fig, out, dpi=50) == out
    assert osp.getsize(out) > 0 and not plt.fignum_exists(fig.number)
    assert plt.imread(out).shape[:2] == (240, 320)  # 6.4 x 4.8 in at the dpi given


def test_a_drawing_returns_its_file_and_leaves_no_figure_open(tmp_path):
    plt = pyplot()
    before = plt.get_fignums()
    out = plot_ratio_histogram([0.1, 0.3, 0.5], [0, 0.2, 0.4, float('inf')],
                               str(tmp_path / 'hist.png'))
    assert osp.getsize(out) > 0 and plt.get_fignums() == before
