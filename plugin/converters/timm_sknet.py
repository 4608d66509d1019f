"""timm's ``skresnext50_32x4d`` (SKNet-50 trained on ImageNet) in :class:`SKNet`'s keys.

timm's model is the paper's SKNet-50 built as ours is: ResNeXt-50 32x4d whose 3x3 convs are SK
units with two 3x3 paths (the second dilated by 2), ``d = max(C / 16, 32)`` and a softmax over the
paths per channel. Only the names differ::

    timm                                  ours (mmdet ResNeXt / SKConv2d)
    layerI.J.conv1.conv / conv1.bn        layerI.J.conv1 / bn1
    layerI.J.conv2.paths.M.conv / .bn     layerI.J.conv2.branches.M.conv / .bn
    layerI.J.conv2.attn.fc_reduce / bn    layerI.J.conv2.attn.fuse.conv / fuse.bn
    layerI.J.conv2.attn.fc_select         layerI.J.conv2.attn.select
    layerI.J.conv3.conv / conv3.bn        layerI.J.conv3 / bn3
    conv1, bn1, layerI.J.downsample.K     the same
    fc                                    head.fc (mmpretrain's LinearClsHead), or dropped
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

_RULES = (
    (r'^(layer\d+\.\d+)\.conv1\.conv\.', r'\1.conv1.'),
    (r'^(layer\d+\.\d+)\.conv1\.bn\.', r'\1.bn1.'),
    (r'^(layer\d+\.\d+)\.conv2\.paths\.(\d+)\.(conv|bn)\.', r'\1.conv2.branches.\2.\3.'),
    (r'^(layer\d+\.\d+)\.conv2\.attn\.fc_reduce\.', r'\1.conv2.attn.fuse.conv.'),
    (r'^(layer\d+\.\d+)\.conv2\.attn\.bn\.', r'\1.conv2.attn.fuse.bn.'),
    (r'^(layer\d+\.\d+)\.conv2\.attn\.fc_select\.', r'\1.conv2.attn.select.'),
    (r'^(layer\d+\.\d+)\.conv3\.conv\.', r'\1.conv3.'),
    (r'^(layer\d+\.\d+)\.conv3\.bn\.', r'\1.bn3.'),
    (r'^(conv1|bn1|layer\d+\.\d+\.downsample\.\d+)\.', r'\1.'),
)


def convert_timm_sknet(state_dict: Dict[str, torch.Tensor], head_prefix: Optional[str] = None
                       ) -> 'OrderedDict[str, torch.Tensor]':
    """timm SKNet keys to :class:`SKNet` keys; ``fc`` goes to ``{head_prefix}fc`` or is dropped.

    Raises:
        KeyError: a key that no rule maps (a different timm model, or a changed timm layout).
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            if head_prefix is not None:
                out[head_prefix + key] = value
            continue
        for pattern, repl in _RULES:
            new, hits = re.subn(pattern, repl, key)
            if hits:
                out[new] = value
                break
        else:
            raise KeyError(f'convert_timm_sknet: no rule for timm key {key!r} (is this '
                           'skresnext50_32x4d?)')
    return out
