from .occlusion_plot import plot_occlusion_reports, plot_ratio_histogram

__all__ = ['plot_occlusion_reports', 'plot_ratio_histogram']
