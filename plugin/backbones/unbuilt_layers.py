"""Backbones that leave out the layers after their last output (so that DDP sees no parameter
without a gradient) still load a checkpoint of the whole network, an ImageNet classifier's."""


class UnbuiltLayersMixin:
    """Drops a checkpoint's keys of the top-level layers named in ``self.unbuilt`` on load.

    Those keys are neither missing nor unexpected: the backbone does not build those layers on
    purpose. Put the mixin before the ``nn.Module`` base class.
    """

    unbuilt: tuple = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            if key[len(prefix):].split('.', 1)[0] in self.unbuilt:
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
