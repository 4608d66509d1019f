"""Wrapper that adds the DSC allocation loss to any mmdet detector, without touching mmdet.

    model = dict(type='DSCDetector',
                 detector=dict(type='RetinaNet', backbone=dict(type='DSCResNet', depth=50), ...),
                 allocation_loss=dict(type='DSCAllocationLoss', loss_weight=0.1))

In ``loss`` mode the backbone forward is traced (:class:`~plugin.models.dsc_tracer.DSCTracer`),
the DSC centres are mapped to image pixels, and ``loss_dsc_alloc`` / ``loss_dsc_cov`` join the
detector's losses (summed and logged like the others). ``predict`` and ``tensor`` modes are the
detector's own; checkpoints keep the detector's keys under ``detector.``.
"""
from typing import Optional, Union

from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..layers.dynamic_stride_conv import DynamicStrideConv2d
from .dsc_tracer import DSCTracer


class DSCLossWrapper(BaseModel):
    """Runs the wrapped model and, in training, adds :class:`DSCAllocationLoss` on its backbone's
    DSC layers. The wrapped model is the submodule named :attr:`inner` (``detector``,
    ``segmentor``); attributes the wrapper lacks (``backbone``, ``with_neck``...) are its own.
    """
    inner = 'model'

    def __init__(self, model: Union[dict, nn.Module], allocation_loss: Optional[dict],
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        if isinstance(model, dict):
            if model.get('data_preprocessor') is None and data_preprocessor is not None:
                model = dict(model, data_preprocessor=data_preprocessor)  # mmseg's top-level one
            model = MODELS.build(model)
        super().__init__(data_preprocessor=model.data_preprocessor, init_cfg=init_cfg)
        self.add_module(self.inner, model)
        self.allocation_loss = MODELS.build(allocation_loss) if allocation_loss else None
        if not any(isinstance(m, DynamicStrideConv2d) for m in self.traced.modules()):
            raise ValueError(f'{type(model).__name__} has no DynamicStrideConv2d in its backbone: '
                             "use a DSC backbone (type='DSCResNet') or DSC conv layers "
                             "(type='DSC')")

    @property
    def wrapped(self) -> nn.Module:
        return self._modules[self.inner]

    @property
    def traced(self) -> nn.Module:
        """The module whose forward maps image pixels to DSC centres: the backbone."""
        return getattr(self.wrapped, 'backbone', self.wrapped)

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.wrapped(inputs, data_samples, mode)

    def loss(self, inputs: Tensor, data_samples) -> dict:
        if self.allocation_loss is None:
            return self.wrapped.loss(inputs, data_samples)
        with DSCTracer(self.traced) as tracer:
            losses = self.wrapped.loss(inputs, data_samples)
        sampling = tracer.sampling()
        if not all(s.positions.requires_grad for s in sampling):
            raise RuntimeError('the DSC centres carry no gradient (with_cp=True recomputes the '
                               'blocks outside the traced graph): disable with_cp for the '
                               'allocation loss')
        target = self.allocation_loss.build_target(data_samples, inputs.shape[-2:], inputs.device)
        losses.update(self.allocation_loss(sampling, target))
        return losses

    def predict(self, inputs: Tensor, data_samples):
        return self.wrapped.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples=None):
        return self.wrapped._forward(inputs, data_samples)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get('_modules', {}).get(type(self).inner)
            if inner is None:
                raise
            return getattr(inner, name)


@MODELS.register_module()
class DSCDetector(DSCLossWrapper):
    """Any mmdet detector (``detector=dict(type=...)``) plus the DSC allocation loss.

    Args:
        detector: the detector config (or module); its backbone holds the DSC layers.
        allocation_loss: a :class:`DSCAllocationLoss` config (None: the detector alone).
        data_preprocessor: used only when ``detector`` has none (the runner passes a config's
            top-level one here).
        init_cfg: of the wrapper (the detector keeps its own).
    """
    inner = 'detector'

    def __init__(self, detector: Union[dict, nn.Module],
                 allocation_loss: Optional[dict] = dict(type='DSCAllocationLoss'),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(detector, allocation_loss, data_preprocessor, init_cfg)
