"""Drawings of what people look at: AP by occlusion bucket, DRConv regions, DSC sampling maps and
filter similarity."""
from .drconv_regions import draw_region_masks, overlay_regions, record_region_masks, region_palette
from .dsc_maps import plot_dsc_maps, sampling_density
from .filter_similarity import (guided_backprop_patterns, plot_similarity_histograms,
                                weight_similarities)
from .occlusion_plot import plot_occlusion_reports, plot_occlusion_study, plot_ratio_histogram

__all__ = [
    'draw_region_masks', 'overlay_regions', 'record_region_masks', 'region_palette',
    'plot_dsc_maps', 'sampling_density', 'guided_backprop_patterns',
    'plot_similarity_histograms', 'weight_similarities', 'plot_occlusion_reports',
    'plot_occlusion_study', 'plot_ratio_histogram'
]
