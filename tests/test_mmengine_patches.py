"""plugin.utils.mmengine_patches: weights_only checkpoints of mmengine, CPU-only distributed
set-up."""
import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

import plugin  # noqa: F401  (applies the fixes)


def roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_message_hub_state_loads_with_weights_only():
    hub = MessageHub.get_instance('mmengine_patches_test')
    for v in (1.0, 0.5, 0.25):
        hub.update_scalar('train/loss', v)
    hub.update_info('best', np.float64(0.7))
    hub.update_info('shape', np.array([3, 4], dtype=np.int32))
    state = roundtrip(dict(message_hub=hub.state_dict()))['message_hub']
    buf = state['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == pytest.approx(0.5833333)
    assert buf.statistics('max') == 1.0
    assert state['runtime_info']['best'] == 0.7
    assert state['runtime_info']['shape'].tolist() == [3, 4]


class _Reduce:
    def __init__(self, *call):
        self.call = call

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize('owner, name', [(HistoryBuffer, '__init__'), (HistoryBuffer,
                                                                       '__class__'),
                                         (np.ndarray, 'tofile')])
def test_getattr_stays_closed(owner, name):
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        roundtrip(dict(x=_Reduce(getattr, (owner, name))))


def test_numpy2_spelling_of_numpy1_objects_is_allowed():
    from torch._weights_only_unpickler import _get_user_allowed_globals
    allowed = _get_user_allowed_globals()
    for name in ('numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
                 'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',
                 'mmengine.logging.history_buffer.HistoryBuffer'):
        assert name in allowed, name


def test_cpu_ddp_wrapper_gets_no_device_ids(tmp_path):
    """The DDP wrapper mmengine builds with device_ids=[LOCAL_RANK] works on a CPU module."""
    import datetime

    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    if torch.cuda.is_available():
        pytest.skip('the fix only acts without CUDA')
    # a file rendezvous (no port to race for) and a deadline on every collective
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "rendezvous"}', rank=0,
                            world_size=1, timeout=datetime.timedelta(seconds=60))
    try:
        model = MMDistributedDataParallel(module=torch.nn.Linear(2, 2), device_ids=[0])
        assert model.device_ids is None
        model(torch.ones(1, 2)).sum().backward()
        assert model.module.weight.grad is not None
        # gloo's worker threads must be idle before teardown: destroying the group while the
        # gradient all-reduce's callback waits for the GIL deadlocks (seen once in 2026-11)
        dist.barrier()
    finally:
        dist.destroy_process_group()
