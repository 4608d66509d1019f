"""Wrapper that adds the DSC allocation loss to any mmseg segmentor, without touching mmseg.

    model = dict(type='DSCSegmentor',
                 segmentor=dict(type='EncoderDecoder', backbone=dict(type='DSCResNet', ...), ...),
                 allocation_loss=dict(type='DSCAllocationLoss', target='boundary'))

Same mechanism as :class:`~plugin.models.dsc_detector.DSCDetector`; the default target is the
label boundaries of ``gt_sem_seg``, where a coarse sampling grid loses the most.
"""
from typing import Optional, Union

from mmengine.registry import MODELS
from torch import nn

from .dsc_detector import DSCLossWrapper


@MODELS.register_module()
class DSCSegmentor(DSCLossWrapper):
    """Any mmseg segmentor (``segmentor=dict(type='EncoderDecoder', ...)``) plus the DSC loss.

    Args:
        segmentor: the segmentor config (or module); its backbone holds the DSC layers.
        allocation_loss: a :class:`DSCAllocationLoss` config (None: the segmentor alone).
        data_preprocessor: used only when ``segmentor`` has none (mmseg configs also keep one
            at the top level, which the runner passes here).
        init_cfg: of the wrapper (the segmentor keeps its own).
    """
    inner = 'segmentor'

    def __init__(self, segmentor: Union[dict, nn.Module],
                 allocation_loss: Optional[dict] = dict(type='DSCAllocationLoss',
                                                        target='boundary'),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(segmentor, allocation_loss, data_preprocessor, init_cfg)
