"""Helpers shared by both trainers (train.py and train_folder.py's modules): the conv block, the rank AUROC, the
manifest's compact JSON and the model file's sha256."""
import hashlib
import json

import numpy as np
import torch.nn as nn


def block(cin, cout, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def auroc(scores, labels):
    """Rank-based (Mann-Whitney) AUROC with tie handling."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def dumps_compact(obj):
    """Indented JSON with arrays of scalars kept on one line ([1, 1, 256, 320])."""
    import re
    text = json.dumps(obj, indent=2)
    compact = re.sub(r'\[\s*([^\[\]{}]*?)\s*\]', lambda m: '[' + ', '.join(p.strip() for p in m.group(1).split(',')) + ']'
                     if m.group(1).strip() else '[]', text)
    return compact if json.loads(compact) == obj else text


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
