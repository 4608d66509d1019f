"""DSCResNet, the inter-layer position maps, DSCAllocationLoss with editing, DSCDetector /
DSCSegmentor and the maps figure."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import ROOT, autocast_dtype
from plugin.analysis import build_model
from plugin.backbones import DSCResNet, DSCShortcut
from plugin.layers import DynamicStrideConv2d, dsc_conv2d
from plugin.models import DSCAllocationLoss, DSCDetector, DSCSampling, DSCSegmentor, DSCTracer
from plugin.models.gaussian_blur import gaussian_blur
from plugin.visualization.dsc_maps import plot_dsc_maps, sampling_density

TINY = osp.join(ROOT, 'configs', 'dsc', 'retinanet_dsc-r18-tiny_fpn_dscloss_1x_occshapes.py')


def dsc_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicStrideConv2d)}


def test_dsc_resnet50_layout_keys_and_plain_checkpoint():
    torch.manual_seed(0)
    plain, dsc = ResNet(50, base_channels=16), DSCResNet(50, base_channels=16)
    plain.init_weights()
    assert sorted(dsc_layers(dsc)) == ['layer2.0.conv2', 'layer3.0.conv2', 'layer4.0.conv2']
    assert all(isinstance(dsc.get_submodule(f'layer{i}.0.downsample.0'), DSCShortcut)
               for i in (2, 3, 4))
    assert isinstance(dsc.layer1[0].downsample[0], torch.nn.Conv2d)  # stride 1: plain
    # a plain ResNet-50 checkpoint loads; only the offset branches are new (zero = plain strides)
    missing, unexpected = dsc.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == sorted(
        f'layer{i}.0.conv2.conv_offset.{p}' for i in (2, 3, 4) for p in ('weight', 'bias'))
    n_params = sum(p.numel() for p in dsc.parameters())
    assert n_params - sum(p.numel() for p in plain.parameters()) == 2 * 9 * (32 + 64 + 128) + 6
    plain.eval()
    dsc.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), dsc(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_training_step_in_float32_and_autocast(device):
    """Every parameter gets a gradient, also under autocast in AMP's dtype of the device (bf16 on
    CPU, fp16 on CUDA), with the offsets moved off zero."""
    torch.manual_seed(0)
    model = DSCResNet(18, base_channels=16).to(device)
    model.init_weights()
    for layer in dsc_layers(model).values():
        torch.nn.init.normal_(layer.conv_offset.weight, std=0.05)
    model.train()
    x = torch.randn(2, 3, 64, 64, device=device)
    sum(o.mean() for o in model(x)).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.zero_grad()
    with torch.autocast(device.type, dtype=autocast_dtype(device)):
        outs = model(x)
    sum(o.float().mean() for o in outs).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_zero_init_residual_and_zero_offsets_after_init_weights():
    model = DSCResNet(50, base_channels=16)
    model.init_weights()
    assert all(b.norm3.weight.abs().sum() == 0 for layer in (model.layer1, model.layer4)
               for b in layer)
    assert all(m.conv_offset.weight.abs().sum() == 0 for m in dsc_layers(model).values())


@pytest.mark.parametrize('kwargs,leaders', [
    (dict(depth=18), ['layer2.0.conv1', 'layer3.0.conv1', 'layer4.0.conv1']),
    (dict(depth=50, style='caffe', stage_with_dsc=(False, True, False, False)), ['layer2.0.conv1']),
    (dict(depth=18, dsc_stem=True, stage_with_dsc=(False, False, False, True)),
     ['conv1', 'layer4.0.conv1']),
    (dict(depth=50, deep_stem=True, dsc_stem=True, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
          stage_with_dsc=(False, True, True, True)), ['stem.0', 'layer2.0.conv2']),
])
def test_variants_place_dsc_on_the_strided_convs(kwargs, leaders):
    model = DSCResNet(base_channels=16, zero_init_residual=False, **kwargs)
    model.init_weights()
    assert sorted(dsc_layers(model)) == sorted(leaders)
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    assert len(outs) == 4
    sum(o.mean() for o in outs).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    # DDP copies gradients into buckets laid out like the parameters: ours keep their strides
    ours = [m for m in model.modules() if isinstance(m, (DynamicStrideConv2d, DSCShortcut))]
    assert all(p.grad.stride() == p.stride() for m in ours for p in m.parameters())


def test_shortcut_samples_the_centres_of_its_leader():
    model = DSCResNet(18, base_channels=16)
    block = model.layer3[0]
    with torch.no_grad():
        block.conv1.conv_offset.bias.copy_(torch.tensor([0.7, -0.4]))
    x = torch.randn(2, 32, 16, 16)
    seen = {}
    block.downsample[0].register_forward_hook(lambda m, a, out: seen.setdefault('out', out))
    block(x)
    positions = block.conv1.positions
    assert (positions - block.conv1.sampling_positions(
        torch.zeros(2, 2, 8, 8), (16, 16))).abs().max() > 0.3
    want = dsc_conv2d(x, block.downsample[0].weight, None, positions)
    torch.testing.assert_close(seen['out'], want)
    plain = torch.nn.functional.conv2d(x, block.downsample[0].weight, stride=2)
    assert (seen['out'] - plain).abs().max() > 1e-3
    with pytest.raises(RuntimeError, match='block'):
        block.downsample(x)  # run alone it has no centres


@pytest.mark.parametrize('kwargs,name', [
    (dict(depth=26), 'depth'), (dict(depth=50, stage_with_dsc=(True, True)), 'stage_with_dsc'),
    (dict(depth=50, avg_down=True), 'avg_down'), (dict(depth=50, dsc='DSC'), 'dsc'),
    (dict(depth=50, dcn=dict(type='DCN'), stage_with_dcn=(False, True, False, False)),
     'stage_with_dcn'),
])
def test_dsc_resnet_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DSCResNet(**kwargs)


def test_tracer_composes_position_maps_layer_by_layer():
    model = DSCResNet(50, base_channels=16)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), DSCTracer(model) as tracer:
        model(x)
    maps = tracer.sampling()
    assert [(s.name, s.stride, tuple(s.positions.shape)) for s in maps] == [
        ('layer2.0.conv2', 8.0, (2, 8, 8, 2)), ('layer3.0.conv2', 16.0, (2, 4, 4, 2)),
        ('layer4.0.conv2', 32.0, (2, 2, 2, 2))]
    for s in maps:  # zero offsets: the plain grid, S * (i, j) for ResNet's centred strided ops
        idx = torch.arange(s.positions.shape[1], dtype=torch.float32) * s.stride
        torch.testing.assert_close(s.positions, s.grid)
        torch.testing.assert_close(s.positions[0, :, 0, 1], idx)
    # stage 2 moves its centres by +0.5 px of its input (stride 4): every later layer's centres
    # move by 2 image pixels, through the composition of the maps (eq. M1)
    with torch.no_grad():
        model.layer2[0].conv2.conv_offset.bias.fill_(float(np.arctanh(0.5)))
        with DSCTracer(model) as tracer:
            model(x)
    for s in tracer.sampling():
        torch.testing.assert_close(s.positions, s.grid + 2.0)


def toy_optimise(loss_cfg, steps=8):
    """Optimise the offset branch of one DSC layer on the allocation loss, the input showing the
    target region (as features show objects). Returns the share of centres inside the box
    [8, 19)^2 of a 32x32 image before and after, and the last losses."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    layer = DynamicStrideConv2d(16, 16, 3, stride=2, padding=1, offset_kernel_size=5,
                                max_displacement=1.0)
    loss_fn = DSCAllocationLoss(**loss_cfg)
    sample = DetDataSample(metainfo=dict(img_shape=(32, 32)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8.0, 8.0, 19.0, 19.0]]),
                                       labels=torch.tensor([0]))
    target = loss_fn.build_target([sample] * 2, (32, 32), 'cpu')
    shown = DSCAllocationLoss(target='boxes').build_target([sample] * 2, (32, 32), 'cpu')
    x = shown[:, None] + 0.05 * torch.randn(2, 16, 32, 32)
    optim = torch.optim.Adam(layer.conv_offset.parameters(), lr=0.01)

    def inside(sampling):
        pos = sampling[0].positions.detach()
        return ((pos >= 8) & (pos < 19)).all(-1).float().mean().item()

    shares = []
    for _ in range(steps + 1):
        with DSCTracer(layer) as tracer:
            layer(x)
        sampling = tracer.sampling()
        shares.append(inside(sampling))
        losses = loss_fn(sampling, target)
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    return shares[0], shares[-1], losses


@pytest.mark.parametrize('sigma', [0.3, 1.0, 1.7])
def test_gaussian_blur_is_the_replicate_padded_gaussian_sum(sigma):
    """The smoothing of the loss's target and of the drawn densities, against the 2-D sum."""
    maps = torch.rand(2, 1, 9, 13, generator=torch.Generator().manual_seed(0))
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (offsets / sigma)**2)
    w /= w.sum()
    padded = np.pad(maps.numpy().astype(np.float64), ((0, 0), (0, 0), (radius, ) * 2,
                                                      (radius, ) * 2), mode='edge')
    expected = sum(w[i] * w[j] * padded[..., i:i + 9, j:j + 13]
                   for i in range(len(w)) for j in range(len(w)))
    out = gaussian_blur(maps, sigma)
    assert out.shape == maps.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(gaussian_blur(torch.full((1, 1, 5, 5), 2.0), sigma),
                          torch.tensor(2.0))  # a constant stays constant at the borders


def test_allocation_loss_pulls_sampling_onto_the_target():
    before, after, losses = toy_optimise(dict(loss_weight=1.0, target='boxes'))
    assert before == 36 / 256 and after > before + 0.03
    assert losses['loss_dsc_alloc'] < 0 and losses['loss_dsc_cov'] >= 0


@pytest.mark.parametrize('weight', [1.0, -1.0])
def test_editing_attracts_or_repels_with_the_sign_of_its_weight(weight):
    box = [8 / 32, 8 / 32, 19 / 32, 19 / 32, weight]
    before, after, _ = toy_optimise(dict(loss_weight=1.0, target=None, edit=dict(boxes=[box])))
    assert (after - before) * weight > 0.03


def test_coverage_term_penalises_gaps_wider_than_max_gap():
    loss = DSCAllocationLoss(target='boxes', max_gap=1.5, coverage_weight=1.0)
    grid = torch.stack(torch.meshgrid(torch.arange(4.0) * 8, torch.arange(4.0) * 8, indexing='xy'),
                       -1)[None]
    spread = grid.clone()
    spread[:, :, 2:, 0] += 8  # one column gap of 2 strides
    target = torch.zeros(1, 32, 32)
    zero = loss([DSCSampling('a', grid, grid, 8.0)], target)
    assert zero['loss_dsc_cov'] == 0 and zero['loss_dsc_alloc'] == 0
    gap = loss([DSCSampling('a', spread, grid, 8.0)], target)['loss_dsc_cov']
    assert gap.item() == pytest.approx((2 - 1.5)**2 * 4 / 12)  # 4 of 12 horizontal gaps


def test_targets_from_boxes_masks_segmentation_and_edits(tmp_path):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData, PixelData
    from mmseg.structures import SegDataSample
    det = DetDataSample(metainfo=dict(img_shape=(10, 12)))
    mask = np.zeros((1, 10, 12), np.uint8)
    mask[0, 2:5, 3:7] = 1
    det.gt_instances = InstanceData(bboxes=torch.tensor([[1.0, 2.0, 4.0, 6.0]]),
                                    labels=torch.tensor([0]), masks=BitmapMasks(mask, 10, 12))
    boxes = DSCAllocationLoss(target='boxes').build_target([det], (12, 16), 'cpu')[0]
    assert boxes.shape == (12, 16) and boxes.sum() == 3 * 4 and boxes[2:6, 1:4].all()
    masks = DSCAllocationLoss(target='masks').build_target([det], (12, 16), 'cpu')[0]
    assert torch.equal(masks[:10, :12], torch.as_tensor(mask[0], dtype=torch.float32))
    np.save(tmp_path / 'map.npy', np.array([[1.0, 0.0], [0.0, 0.0]]))
    edited = DSCAllocationLoss(target=None, edit=dict(
        boxes=[[0.5, 0.0, 1.0, 0.5, -2.0]], map=str(tmp_path / 'map.npy'), map_weight=0.5)
    ).build_target([det], (12, 16), 'cpu')[0]
    assert edited[0, 11] == -2.0 and edited[9, 0] == 0 and edited[0, 0] > 0.4
    assert edited[10:].abs().sum() == 0 and edited[:, 12:].abs().sum() == 0  # padding untouched
    seg = SegDataSample(metainfo=dict(img_shape=(6, 6)))
    label = torch.zeros(1, 6, 6, dtype=torch.long)
    label[0, :, 3:] = 2
    label[0, 0] = 255
    seg.gt_sem_seg = PixelData(data=label)
    boundary = DSCAllocationLoss(target='boundary').build_target([seg], (6, 6), 'cpu')[0]
    assert boundary[1:, 2:4].all() and boundary[1:, :2].sum() == 0 and boundary[0].sum() == 0
    fg = DSCAllocationLoss(target='foreground').build_target([seg], (6, 6), 'cpu')[0]
    assert fg.sum() == 5 * 3
    with pytest.raises(ValueError, match='gt_instances'):
        DSCAllocationLoss(target='boxes').build_target([seg], (6, 6), 'cpu')


@pytest.mark.parametrize('kwargs,name', [
    (dict(target='box'), 'target'), (dict(max_gap=1.0), 'max_gap'), (dict(sigma=0), 'sigma'),
    (dict(edit=dict(box=[])), 'edit'), (dict(edit=dict(boxes=[[0, 0, 2, 1, 1]])), 'edit boxes'),
    (dict(target=None), 'target=None'),
])
def test_allocation_loss_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DSCAllocationLoss(**kwargs)


def det_batch(model, n=2, size=64):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), batch_input_shape=(size, size),
                                        scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[4.0, 6.0, 30.0, 40.0]]),
                                      labels=torch.tensor([1]))
        samples.append(s)
    return torch.randn(n, 3, size, size), samples


def test_dsc_detector_adds_the_loss_and_delegates_other_modes():
    init_default_scope('mmdet')
    model = build_model(Config.fromfile(TINY))
    assert isinstance(model, DSCDetector) and model.backbone is model.detector.backbone
    assert model.data_preprocessor is model.detector.data_preprocessor
    assert all(k.startswith('detector.') for k in model.state_dict())
    inputs, samples = det_batch(model)
    model.train()
    losses = model(inputs, samples, mode='loss')
    assert {'loss_cls', 'loss_bbox', 'loss_dsc_alloc', 'loss_dsc_cov'} <= set(losses)
    model.parse_losses(losses)[0].backward()
    assert all(m.conv_offset.weight.grad.abs().sum() > 0 for m in dsc_layers(model).values())
    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
        feats = model(inputs, samples, mode='tensor')
    assert len(preds) == 2 and 'pred_instances' in preds[0]
    assert isinstance(feats, tuple)
    plain = Config.fromfile(osp.join(ROOT, 'configs', 'demo',
                                     'retinanet_r18-tiny_fpn_1x_occshapes.py'))
    with pytest.raises(ValueError, match='DynamicStrideConv2d'):
        DSCDetector(detector=plain.model)


def test_dsc_segmentor_adds_the_boundary_loss():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'fcn_r18-tiny-d8_occshapes-seg.py'))
    segmentor = cfg.model
    segmentor.backbone.update(type='DSCResNet', deep_stem=True, dsc_stem=True,
                              stage_with_dsc=(False, True, False, False))
    segmentor.backbone.pop('contract_dilation', None)
    model = DSCSegmentor(segmentor=segmentor)
    model.train()
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64)))
        label = torch.zeros(1, 64, 64, dtype=torch.long)
        label[0, 10:40, 20:50] = 2
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    losses = model(torch.randn(2, 3, 64, 64), samples, mode='loss')
    assert {'decode.loss_ce', 'loss_dsc_alloc', 'loss_dsc_cov'} <= set(losses)
    model.parse_losses(losses)[0].backward()
    assert model.segmentor.backbone.stem[0].conv_offset.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('compare', [False, True])
def test_maps_figure_has_one_panel_per_dsc_layer(tmp_path, compare):
    model = DSCResNet(18, base_channels=16, dsc_stem=True)
    model.eval()
    with torch.no_grad():
        model.layer3[0].conv1.conv_offset.bias.fill_(1.0)
        with DSCTracer(model) as tracer:
            model(torch.randn(1, 3, 64, 64))
    maps = tracer.sampling()
    assert len(maps) == 4
    density = sampling_density(maps[2].positions[0], maps[2].grid[0], maps[2].stride, (64, 64))
    assert density.shape == (16, 16) and density.max() > 1.2  # moved: denser somewhere
    image = np.zeros((64, 64, 3), np.uint8)
    out = str(tmp_path / 'maps.png')
    fig = plot_dsc_maps(image, maps, out, compare=maps if compare else None)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split('\n')[0] for ax in panels] == [s.name for s in maps]
    assert osp.getsize(out) > 5000
