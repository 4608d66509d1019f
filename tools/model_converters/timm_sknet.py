"""Convert timm's SKNet-50 (``skresnext50_32x4d``) weights to an mmdynconv ``SKNet`` checkpoint.

    # a timm checkpoint file (.safetensors, or a .pth/.bin state dict) -> backbone checkpoint
    python tools/model_converters/timm_sknet.py timm_sknet50.safetensors sknet50_timm.pth
    # the same, downloaded by timm (a machine with network access)
    python tools/model_converters/timm_sknet.py timm://skresnext50_32x4d sknet50_timm.pth
    # an mmpretrain ImageClassifier checkpoint (backbone.* and head.fc.*)
    python tools/model_converters/timm_sknet.py SRC OUT.pth --classifier

The backbone checkpoint loads into ``SKNet(depth=50)`` with strict keys, e.g. a detector's
``backbone.init_cfg=dict(type='Pretrained', checkpoint='sknet50_timm.pth')``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def read_state_dict(src: str) -> dict:
    """timm's weights from a file (never unpickling code) or a ``timm://`` name."""
    import torch
    if src.startswith('timm://'):
        import timm
        return timm.create_model(src[len('timm://'):], pretrained=True).state_dict()
    if not osp.isfile(src):
        raise SystemExit(f'error: no such file: {src}')
    if src.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(src)
    state = torch.load(src, map_location='cpu', weights_only=True)
    return state.get('state_dict', state.get('model', state)) if isinstance(state, dict) else state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='timm checkpoint file, or timm://skresnext50_32x4d')
    parser.add_argument('out', help='output .pth')
    parser.add_argument('--classifier', action='store_true',
                        help='write an mmpretrain ImageClassifier checkpoint (backbone. and '
                        'head.fc. keys) instead of backbone keys')
    args = parser.parse_args(argv)

    import torch
    import plugin  # noqa: F401
    from plugin.converters import convert_timm_sknet
    try:
        state = convert_timm_sknet(read_state_dict(args.src),
                                   head_prefix='head.' if args.classifier else None)
    except KeyError as e:
        raise SystemExit(f'error: {e.args[0]}') from None
    if args.classifier:
        state = {(k if k.startswith('head.') else 'backbone.' + k): v for k, v in state.items()}
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(state_dict=state, meta=dict(source=args.src, converter='timm_sknet')),
               args.out)
    print(f'{len(state)} tensors -> {args.out}')


if __name__ == '__main__':
    main()
