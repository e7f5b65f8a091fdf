"""Distillation (--teacher): the image loss of a small student is taken against a soft target that mixes the label
with what a teacher ensemble says about the same augmented image.

Why: the ensemble that meets the magnetic-tile target (2 nets x 8 test-time views) costs ~94 ms per image; the line
has 5 ms. Its scores carry what a single small net does not learn from 404 labels alone: how defective a pasted,
flipped, contrast-jittered tile looks to nets that rank held-out tiles well. The teachers score every training batch
after its augmentation (copy-paste included), so the student sees a fresh soft target for each variant it trains on.

- load_teachers: the nets of --teacher (--save-state files of earlier runs), at their own input size.
- TeacherScores: the teachers' mean score over --teacher-views views of a batch (the student's input resized to the
  teachers' size when they differ; per-image standardisation inside the nets makes a bilinear resize harmless).
"""
import sys

import torch
import torch.nn.functional as F

from segmenter import _views, net_from_state


def load_teachers(paths):
    """-> (nets in eval mode, their common input size, their resize mode)."""
    nets, sizes, resizes = [], set(), set()
    for path in paths.split(','):
        st = torch.load(path)
        nets.append(net_from_state(st))
        sizes.add(st['size'])
        resizes.add(st['resize'])
    if len(sizes) != 1 or len(resizes) != 1:
        sys.exit(f'--teacher: the teachers were trained at different sizes/resizes ({sorted(sizes)}, {sorted(resizes)})')
    for n in nets:
        for p in n.parameters():
            p.requires_grad_(False)
    return nets, sizes.pop(), resizes.pop()


class TeacherScores:
    """Scores a (normalised, augmented) batch the way the teachers' own ensemble package would: mean of the nets'
    sigmoid(image logit) over `views` flipped/transposed views (the score of segmenter.Exported(nets, views))."""

    def __init__(self, nets, size, views, weight):
        self.nets = nets
        self.views = views
        self.size = size
        self.weight = weight

    @torch.no_grad()
    def scores(self, xb):
        if xb.shape[-1] != self.size or xb.shape[-2] != self.size:
            xb = F.interpolate(xb, size=(self.size, self.size), mode='bilinear', align_corners=False)
        # one view at a time, not Exported's one batch of all views: a batch 8x larger ran ~30x slower on this CPU
        # (its activations fall out of the caches), which made a distillation epoch 18x a plain one
        total = None
        for v in _views(xb, self.views):
            for n in self.nets:
                p = torch.sigmoid(n(v)[1])
                total = p if total is None else total + p
        return total / (len(self.nets) * self.views)

    def target(self, xb, yb):
        """The soft image target: (1 - weight) x label + weight x teacher score."""
        return (1 - self.weight) * yb + self.weight * self.scores(xb)
