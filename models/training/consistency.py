"""View consistency (--consistency W): each training batch is also seen through one random flip/transpose, both
views are trained on the image target, and W x the squared difference of their image logits is added to the loss.

Why: the line-speed net (8,16,32 @ 256) scores 0.918 image AUROC on one view and 0.965 on the mean of its 8
flipped/transposed views (models/training/README.md, "Line speed"). The views disagree; their mean is what ranks
tiles well, and 8 views cost 8x the budget. Training the views to agree attacks that disagreement directly, so that
one view at run time is closer to the mean of eight. Distilling the 8-view mean as a soft target did not work
(0.894); this asks for agreement instead of copying a weak teacher's scores.
"""
import torch
import torch.nn.functional as F

from segmenter import _views


def other_view(xb, gen):
    """xb seen through one of its 7 non-identity flips/transposes (drawn from gen, so runs stay seeded)."""
    k = int(torch.randint(1, 8, (1,), generator=gen))
    return _views(xb, 8)[k]


def image_loss(net, xb, logit, target, pos_weight, weight, gen):
    """The image loss of a batch whose first view gave `logit`: mean BCE of both views against target, plus
    weight x mean squared logit difference between them."""
    _, logit2 = net(other_view(xb, gen))
    bce = F.binary_cross_entropy_with_logits(logit, target, pos_weight=pos_weight)
    bce2 = F.binary_cross_entropy_with_logits(logit2, target, pos_weight=pos_weight)
    return 0.5 * (bce + bce2) + weight * torch.mean((logit - logit2) ** 2)
