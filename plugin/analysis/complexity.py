"""Parameters and FLOPs of modules, and of whole mmdet/mmseg models built from configs.

One multiply-add counts as one FLOP: the convention of the ResNet, SKNet and TBC papers
(ResNet-50 at 224x224: 4.1 GFLOPs). The count traces the model with ``torch.jit`` through
mmengine's ``FlopAnalyzer`` (a port of fvcore), with the handles of :mod:`.flop_handles` for the
ops of this plugin's layers. Ops without a handle are reported in ``uncounted``; other code
adds a handle with :func:`register_flop_handle`.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from torch import nn

from .flop_handles import FLOP_HANDLES

_EXTRA_FLOP_HANDLES: Dict[str, Callable] = {}


def register_flop_handle(op_name: str, handle: Callable) -> None:
    """Count ``op_name`` (a jit op such as ``'aten::grid_sampler'``) with
    ``handle(inputs, outputs)`` as fvcore handles do; a later registration replaces the earlier,
    and any of :data:`~.flop_handles.FLOP_HANDLES`."""
    _EXTRA_FLOP_HANDLES[op_name] = handle


def module_complexity(module: nn.Module, inputs: Union[torch.Tensor, Tuple]) -> dict:
    """``{'params', 'flops', 'uncounted'}`` of ``module(*inputs)`` in eval mode, without grad."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(module, inputs)
            analyzer.set_op_handle(**{**FLOP_HANDLES, **_EXTRA_FLOP_HANDLES})
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            flops = analyzer.total()
            uncounted = sorted(analyzer.unsupported_ops())
    finally:
        module.train(was_training)
    return dict(params=sum(p.numel() for p in module.parameters()), flops=int(flops),
                uncounted=uncounted)


class _TensorForward(nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` as a one-argument module for tracing."""

    def __init__(self, model: nn.Module, data_samples: Optional[list]):
        super().__init__()
        self.model = model
        self.data_samples = data_samples
        self.training = model.training  # module_complexity restores this mode on the model

    def forward(self, inputs):
        return self.model(inputs, self.data_samples, mode='tensor')


def build_model(cfg: Union[str, Config], cfg_options: Optional[dict] = None) -> nn.Module:
    """The model of a config, built in its ``default_scope`` (mmdet or mmseg), in eval mode.
    The config's ``custom_imports`` (``'plugin'`` in ours) register the modules it names."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    if not isinstance(cfg, Config):
        cfg = Config.fromfile(cfg)
    if cfg.get('custom_imports'):  # Config.fromfile did it; a Config made otherwise has not
        import_modules_from_strings(**cfg.custom_imports)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    if model_cfg.get('data_preprocessor') is None and cfg.get('data_preprocessor'):
        model_cfg.data_preprocessor = cfg.data_preprocessor  # mmseg keeps it at the top level
    model = MODELS.build(model_cfg)
    model.eval()  # not chained: mmdet's ResNet.train() returns None
    return model


def find_backbone(model: nn.Module) -> nn.Module:
    """``model.backbone``, also inside wrappers (the first submodule named ``backbone``)."""
    for name, module in model.named_modules():
        if name.split('.')[-1] == 'backbone':
            return module
    raise ValueError(f'{type(model).__name__} has no submodule named backbone')


def empty_data_samples(scope: str, shape: Sequence[int]) -> list:
    """One mmdet (or mmseg, mmpretrain, by ``scope``) data sample with only the metainfo of an
    unscaled ``shape`` image: what ``model(inputs, data_samples, mode=...)`` needs without
    annotations."""
    h, w = shape
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0))
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=meta)]
    if scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        return [DataSample(metainfo=meta)]
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=meta)]


def config_complexity(cfg: Union[str, Config], shape: Sequence[int] = (800, 1333),
                      cfg_options: Optional[dict] = None,
                      backbone_shape: Optional[Sequence[int]] = None,
                      model: Optional[nn.Module] = None) -> dict:
    """Parameters and FLOPs of a config's backbone and whole model on one ``shape`` image.

    The backbone is counted on the same image, or on one of ``backbone_shape`` (e.g. 224x224, the
    papers' ImageNet tables). ``model``: the config's model if already built (eval mode).
    Two-stage heads process the proposals that survive NMS, so their count depends on the image;
    a fixed random image (seed 0) makes the number repeatable.
    """
    if not isinstance(cfg, Config):
        cfg = Config.fromfile(cfg)
    model = model if model is not None else build_model(cfg, cfg_options)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, *shape, generator=generator)
    backbone_x = x if backbone_shape is None else torch.randn(1, 3, *backbone_shape,
                                                              generator=generator)
    backbone = module_complexity(find_backbone(model), backbone_x)
    whole = module_complexity(
        _TensorForward(model, empty_data_samples(cfg.get('default_scope', 'mmdet'), shape)), x)
    return dict(backbone_params=backbone['params'], backbone_flops=backbone['flops'],
                model_params=whole['params'], model_flops=whole['flops'], shape=tuple(shape),
                uncounted=sorted(set(backbone['uncounted']) | set(whole['uncounted'])))
