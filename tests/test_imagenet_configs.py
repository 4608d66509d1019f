"""ImageNet pretraining through mmpretrain: every configs/imagenet config builds an mmpretrain
``ImageClassifier`` around our backbone and trains a step; its checkpoint hands the backbone to the
matching COCO config with no missing or unexpected keys; a missing checkpoint names its config."""
import glob
import logging
import os.path as osp

import pytest
import torch

from conftest import ROOT

pytest.importorskip('mmpretrain')
IMAGENET = sorted(glob.glob(osp.join(ROOT, 'configs', 'imagenet', '*.py')))
CLASSIFIERS = IMAGENET + sorted(glob.glob(osp.join(ROOT, 'configs', 'shapecls', '*.py')))
# ImageNet config -> a COCO (or demo) config of the same backbone
HAND_OFF = {
    'tiedresnet50_8xb32_in1k': 'tbc/retinanet_tiedresnet50_fpn_1x_coco.py',
    'tiedresnet50-s_8xb32_in1k': 'tbc/retinanet_tiedresnet50-s_fpn_1x_coco.py',
    'tiedresnet101_8xb32_in1k': 'tbc/retinanet_tiedresnet101_fpn_1x_coco.py',
    'tiedresnext50_8xb32_in1k': 'tbc/retinanet_tiedresnext50_fpn_1x_coco.py',
    'tiedsenet50_8xb32_in1k': 'tbc/mask-rcnn_tiedsenet50_fpn_1x_coco.py',
    'tiedresnest50_8xb32_in1k': 'tbc/mask-rcnn_tiedresnest50_fpn_1x_coco.py',
    'dr-resnet50_8xb32_in1k': 'drconv/retinanet_dr-r50_fpn_1x_coco.py',
    'dr-shufflenetv2-0.5x_16xb64_in1k': 'drconv/retinanet_dr-shufflenetv2-0.5x_fpn_1x_coco.py',
    'dr-shufflenetv2-1x_16xb64_in1k': 'drconv/retinanet_dr-shufflenetv2-1x_fpn_1x_coco.py',
    'shufflenetv2-0.5x_16xb64_in1k': 'drconv/retinanet_shufflenetv2-0.5x_fpn_1x_coco.py',
    'shufflenetv2-1x_16xb64_in1k': 'drconv/retinanet_shufflenetv2-1x_fpn_1x_coco.py',
    'dr-mobilenetv2_8xb32_in1k': 'drconv/retinanet_dr-mobilenetv2_fpn_1x_coco.py',
    'dsc-resnet50_8xb32_in1k': 'dsc/retinanet_dsc-r50_fpn_1x_coco.py',
    'sknet50_8xb32_in1k': 'sk/retinanet_sknet50_fpn_1x_coco.py',
    'sknet101_8xb32_in1k': 'sk/retinanet_sknet101_fpn_1x_coco.py',
}


def _name(path):
    return osp.splitext(osp.basename(path))[0]


def _classifier(path, num_classes=5):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    import plugin  # noqa: F401
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain' and 'plugin' in cfg.custom_imports['imports']
    init_default_scope('mmpretrain')
    cfg.model.head.num_classes = num_classes
    cfg.model.data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=num_classes)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('path', CLASSIFIERS, ids=_name)
def test_imagenet_config_trains_a_step(path):
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    cfg, model = _classifier(path)
    model.init_weights()
    model.train()
    # pretraining trains every BN (mmdet's ResNet freezes them by default, for detection)
    frozen = [n for n, m in model.named_modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.training]
    assert not frozen, frozen[:5]
    inputs = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(k) for k in (1, 3)]
    losses = model(inputs, samples, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad  # DDP needs a gradient for every parameter
    # the recipe the paper and mmpretrain use: SGD/AdamW schedule with a base batch for scaling
    assert cfg.auto_scale_lr.base_batch_size in (32, 256, 1024)


def test_every_imagenet_config_has_a_detection_hand_off():
    assert set(map(_name, IMAGENET)) - set(HAND_OFF) <= {
        'tiedresnet101-s_8xb32_in1k', 'tiedresnext50-s_8xb32_in1k'}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize('imagenet, detector', sorted(HAND_OFF.items()))
def test_classifier_checkpoint_hands_off_to_detector(imagenet, detector, tmp_path):
    """mmpretrain checkpoint -> ``init_cfg=dict(type='Pretrained', prefix='backbone.')``: every
    backbone key loads (equal tensors), and mmengine reports nothing missing or unexpected."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS
    _, classifier = _classifier(osp.join(ROOT, 'configs', 'imagenet', imagenet + '.py'))
    ckpt = tmp_path / 'epoch_100.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta=dict()), ckpt)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', detector))
    backbone_cfg = cfg.model.backbone
    backbone_cfg.init_cfg = dict(type='Pretrained', prefix='backbone.', checkpoint=str(ckpt))
    backbone = MODELS.build(backbone_cfg)
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        backbone.init_weights()
    finally:
        logger.removeHandler(records)
    text = '\n'.join(records.messages)
    assert 'missing keys' not in text and 'unexpected key' not in text, text
    expected = {k[len('backbone.'):]: v for k, v in classifier.state_dict().items()
                if k.startswith('backbone.')}
    got = backbone.state_dict()
    # a backbone that stops at its last detection output skips the classifier-only layers
    skipped = {k for k in expected if k.split('.', 1)[0] in getattr(backbone, 'unbuilt', ())}
    assert set(got) == set(expected) - skipped, sorted(set(got) ^ set(expected))[:10]
    assert all(torch.equal(got[k], v) for k, v in expected.items() if k not in skipped)


def test_missing_backbone_checkpoint_names_its_config(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader

    from plugin.utils import CheckpointError
    missing = tmp_path / 'work_dirs' / 'tiedresnet50_8xb32_in1k' / 'epoch_100.pth'
    with pytest.raises(CheckpointError, match=r'configs/imagenet/tiedresnet50_8xb32_in1k\.py'):
        CheckpointLoader.load_checkpoint(str(missing))
    # any other missing file keeps mmengine's FileNotFoundError
    with pytest.raises(FileNotFoundError):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'other.pth'))
