"""The segmentation network and what model.onnx computes with it.

- Net: per-image standardisation, 3 stride-2 conv blocks, 2 dilated context blocks, a 1x1 segmentation head
  (logits at 1/8) and an image head (one more stride-2 block, global average + max pool, linear: the image logit).
- Exported: the module that is exported as model.onnx (sigmoid outputs, test-time views, ensemble means).
- load_members: the nets of --ensemble, from --save-state files.
"""
import sys

import torch
import torch.nn as nn

from training_common import block


class Standardise(nn.Module):
    """Per-image standardisation inside the network (x - mean) / std: tiles differ in brightness and contrast."""

    def forward(self, x):
        m = x.mean(dim=(2, 3), keepdim=True)
        v = ((x - m) * (x - m)).mean(dim=(2, 3), keepdim=True)
        return (x - m) / torch.sqrt(v + 1e-2)


class Net(nn.Module):
    """features at 1/8 -> seg head (map); one more stride-2 block -> global avg + max pool -> image head (score)."""

    def __init__(self, widths, standardise=True, dropout=0.0):
        super().__init__()
        w1, w2, w3 = widths
        self.standardise = Standardise() if standardise else nn.Identity()
        self.features = nn.Sequential(block(1, w1, stride=2), block(w1, w2, stride=2), block(w2, w3, stride=2),
                                      block(w3, w3, dilation=2), block(w3, w3, dilation=4))
        self.seg = nn.Conv2d(w3, 1, 1)
        self.down = block(w3, 2 * w3, stride=2)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.cls = nn.Linear(4 * w3, 1)
        nn.init.constant_(self.seg.bias, -3.0)

    def forward(self, x):
        f = self.features(self.standardise(x))
        g = self.down(f)
        pooled = torch.cat([g.mean(dim=(2, 3)), torch.amax(g, dim=(2, 3))], dim=1)
        return self.seg(f), self.cls(self.drop(pooled))[:, 0]


def _flip(x, dim):
    """x reversed along dim, as a Gather with a constant index (exports to any opset)."""
    return x.index_select(dim, torch.arange(x.shape[dim] - 1, -1, -1))


def _views(x, tta):
    """The test-time views of a batch: 1 (none), 4 (h/v flips) or 8 (flips and transposes; square inputs)."""
    vs = [x]
    if tta >= 4:
        vs += [_flip(x, 3), _flip(x, 2), _flip(_flip(x, 3), 2)]
    if tta >= 8:
        vs += [v.transpose(2, 3) for v in vs]
    return vs


def _unview(m, k):
    """Undo view k (see _views) on a map."""
    if k >= 4:
        m, k = m.transpose(2, 3), k - 4
    if k in (1, 3):
        m = _flip(m, 3)
    if k in (2, 3):
        m = _flip(m, 2)
    return m


class Exported(nn.Module):
    """model.onnx: preprocessed image -> (map [1,1,h,w] defect probability, score [1]).
    With tta > 1 the score is the mean of sigmoid(image logit) over the flipped/transposed views, the map the mean
    of the views' maps mapped back. Given several nets (--ensemble), map and score are the means over the nets."""

    def __init__(self, net, tta=1):
        super().__init__()
        self.nets = nn.ModuleList(net if isinstance(net, (list, tuple)) else [net])
        self.tta = tta

    def _one(self, net, image):
        if self.tta <= 1:
            seg, logit = net(image)
            return torch.sigmoid(seg), torch.sigmoid(logit)
        vs = _views(image, self.tta)
        n = image.shape[0]
        seg, logit = net(torch.cat(vs, dim=0))
        segs = torch.sigmoid(seg)
        maps = [_unview(segs[k * n:(k + 1) * n], k) for k in range(len(vs))]
        scores = torch.sigmoid(logit).reshape(len(vs), n)
        return sum(maps) / len(maps), scores.mean(dim=0)

    def forward(self, image):
        outs = [self._one(net, image) for net in self.nets]
        if len(outs) == 1:
            return outs[0]
        return sum(o[0] for o in outs) / len(outs), sum(o[1] for o in outs) / len(outs)


def net_from_state(st):
    """The Net a --save-state file holds (its widths, standardisation and weights), in eval mode."""
    n = Net(tuple(int(w) for w in st['widths'].split(',')), standardise=st['standardise'])
    n.load_state_dict(st['state'])
    return n.eval()


def load_members(args):
    """The nets of --ensemble (their --save-state files); each must match --size and --resize."""
    nets = []
    for path in args.ensemble.split(','):
        st = torch.load(path)
        if st['size'] != args.size or st['resize'] != args.resize:
            sys.exit(f'{path}: trained at size {st["size"]} resize {st["resize"]}, not {args.size} {args.resize}')
        nets.append(net_from_state(st))
    return nets
