"""Necks for mmdet and mmseg configs."""
