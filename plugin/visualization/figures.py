"""What every drawing here shares: pyplot without a display, and writing a figure to a file."""
import os
import os.path as osp


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, unless a backend is already chosen."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out_file: str, **savefig_kwargs) -> str:
    """Write ``fig`` to ``out_file`` (its folder made if needed), close it, return ``out_file``."""
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, **savefig_kwargs)
    pyplot().close(fig)
    return out_file
