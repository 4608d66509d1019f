"""``IterSyncBuffersHook``: mmengine's ``SyncBuffersHook`` for iteration-based training.

BN layers that train without SyncBN update their running statistics from each process's own
batches, so the processes' buffers drift apart. mmengine's ``SyncBuffersHook`` averages them after
every epoch (before the ``CheckpointHook`` saves and before validation): enough for
``EpochBasedTrainLoop``. In an ``IterBasedTrainLoop`` the checkpoint is saved in
``after_train_iter`` while that hook averages only before validation, so the saved checkpoint
(rank 0's buffers) is not the model that was validated. This hook averages the buffers after every
training iteration instead, before any checkpoint or validation of it; the all-reduce moves the BN
statistics only, little beside the gradients' all-reduce of the same step.
"""
from mmengine.dist import all_reduce_params, is_distributed
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class IterSyncBuffersHook(Hook):
    """Average the model's buffers over the processes after every training iteration."""

    priority = 'NORMAL'  # before the CheckpointHook (VERY_LOW) saves the iteration's model

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if is_distributed():
            all_reduce_params(runner.model.buffers(), op='mean')
