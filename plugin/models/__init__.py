"""Losses and model wrappers (detectors, segmentors) that add to mmdet/mmseg models."""
