"""Losses and model wrappers (detectors, segmentors) that add to mmdet/mmseg models, and the DSC
tracer the allocation loss runs at every training step."""
from .dsc_allocation_loss import DSCAllocationLoss  # noqa: F401
from .dsc_detector import DSCDetector, DSCLossWrapper  # noqa: F401
from .dsc_segmentor import DSCSegmentor  # noqa: F401
from .dsc_tracer import DSCSampling, DSCTracer  # noqa: F401
