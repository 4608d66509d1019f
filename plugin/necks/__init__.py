"""Necks for mmdet and mmseg configs."""
from .tied_gcb_neck import TiedGCBNeck  # noqa: F401
