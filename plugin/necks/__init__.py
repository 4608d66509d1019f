"""Necks for mmdet and mmseg configs."""
from .sk_fpn import SKFPN  # noqa: F401
from .tied_gcb_neck import TiedGCBNeck  # noqa: F401
