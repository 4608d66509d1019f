"""mmdet ResNet's ``zero_init_residual`` for backbones with their own block classes.

mmdet's ``ResNet`` zero-initialises the last norm of every residual block (so that each block
starts as the identity) only when its block class *is* mmdet's ``BasicBlock`` or ``Bottleneck``
(an identity check): subclasses of them, and ResNeXt's bottleneck, are left out.
:class:`ZeroInitResidualMixin` gives them the same init under the same conditions.
"""
from mmdet.models.backbones.resnet import BasicBlock
from torch import nn


class ZeroInitResidualMixin:
    """Zero-initialise the last norm (``norm2`` of a basic block, ``norm3`` of a bottleneck) of
    every block, as mmdet's ``ResNet`` does for its own blocks: with ``zero_init_residual``
    (default ``True``) and neither ``init_cfg`` nor ``pretrained`` given.

    Listed before mmdet's ``ResNet`` (or a subclass) in the bases, e.g.
    ``class DRResNet(ZeroInitResidualMixin, ResNet)``; a backbone's own ``make_res_layer`` reaches
    this one through ``super()``.
    """

    def __init__(self, *args, **kwargs) -> None:
        self._zero_init_last_norm = (kwargs.get('zero_init_residual', True)
                                     and kwargs.get('init_cfg') is None
                                     and kwargs.get('pretrained') is None)
        super().__init__(*args, **kwargs)

    def make_res_layer(self, **kwargs) -> nn.Module:
        if self._zero_init_last_norm and kwargs.get('init_cfg') is None:
            last_norm = 'norm2' if issubclass(kwargs['block'], BasicBlock) else 'norm3'
            kwargs['init_cfg'] = dict(type='Constant', val=0, override=dict(name=last_norm))
        return super().make_res_layer(**kwargs)
