"""The training loop of train_folder.py and the trainer's own scores.

- loss_weights: the positive weights of the image and segmentation losses, from the training split.
- fit: AdamW + one-cycle over the epochs (seeded batches and augmentation), optional EMA of the weights and, with a
  validation split, keeping the best epoch of the second half.
- predict / metrics: scores computed through the same Exported module as model.onnx (TTA and ensembles included).
"""
import copy
import time

import torch
import torch.nn.functional as F

from augmentation import augment, fixed_crop, paste_defects, zoom
from consistency import image_loss
from segmenter import Exported
from training_common import auroc


@torch.no_grad()
def predict(net, x, tta=1):
    """(maps, scores) as model.onnx computes them."""
    exported = Exported(net, tta).eval()
    segs, scores = [], []
    for i in range(0, x.shape[0], 32):
        s, p = exported(x[i:i + 32])
        segs.append(s)
        scores.append(p)
    return torch.cat(segs), torch.cat(scores)


def metrics(net, x, y, classes, threshold, tta=1):
    _, scores = predict(net, x, tta)
    pred = (scores >= threshold).float()
    m = {'image_auroc': auroc(scores.numpy(), y.numpy()), 'accuracy': float((pred == y).float().mean())}
    if (y == 1).any():
        m['recall'] = float(pred[y == 1].mean())
    if (y == 0).any():
        m['false_reject_rate'] = float(pred[y == 0].mean())
    for cls in sorted(set(classes) - {'good'}):
        m[f'recall_{cls}'] = float(pred[torch.tensor([c == cls for c in classes])].mean())
    return m, scores


def loss_weights(t, y, has_mask, pasted=0.0):
    """(image pos_weight: good/defective, segmentation pos_weight: negative/positive cells up to 20, positive cell
    fraction) of a training split. pasted (--balance-paste): the pasted defective examples per good image, counted
    with the defectives, so the image loss weighs good and defective as the net sees them."""
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    n_pos += pasted * n_neg
    img_pos_weight = torch.tensor(n_neg / n_pos if n_pos and n_neg else 1.0)
    pos_frac = float(t[has_mask].mean()) if has_mask.any() else 0.0
    seg_pos_weight = torch.tensor(min(20.0, (1 - pos_frac) / pos_frac) if pos_frac > 0 else 1.0)
    return img_pos_weight, seg_pos_weight, pos_frac


def fit(net, x, t, y, has_mask, val, gen, args, img_pos_weight, seg_pos_weight, donors=None, teacher=None):
    """Train net for args.epochs epochs -> (the net to export: net, its EMA or the kept best epoch; seconds).
    donors: (images, pixel masks, cell targets) of masked defects for --paste. teacher (--teacher, distillation.py):
    the image loss is taken against its soft target for each augmented batch instead of the label alone.
    args.consistency > 0 (consistency.py): the image loss covers a second, flipped/transposed view of each batch and
    how far the two views' logits disagree."""
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = (len(y) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(1, args.epochs * steps), pct_start=0.15)
    ema = copy.deepcopy(net) if args.ema > 0 else None
    best = (-1.0, 0, None)  # (validation AUROC, epoch, state_dict)

    t1 = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for b in range(steps):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb, tb, yb, sel = x[idx], t[idx], y[idx], has_mask[idx]
            if donors is not None:
                xb, tb, yb, sel = paste_defects(xb, tb, yb, sel, gen, donors, args.paste, args.rot90, args.paste_move)
            if args.crop_size and args.crop_size < args.size:
                xb, tb, yb = fixed_crop(xb, tb, yb, sel, gen, args.crop_size)
            if args.zoom > 0:
                xb, tb = zoom(xb, tb, gen, args.zoom)
                yb = torch.where(sel, (tb.amax(dim=(1, 2, 3)) > 0).float(), yb)
            xb, tb = augment(xb, tb, gen, rot90=args.rot90, crop=args.crop, contrast=args.contrast)
            seg, logit = net(xb)
            target = teacher.target(xb, yb) if teacher is not None else yb
            if args.consistency > 0:
                loss = image_loss(net, xb, logit, target, img_pos_weight, args.consistency, gen)
            else:
                loss = F.binary_cross_entropy_with_logits(logit, target, pos_weight=img_pos_weight)
            if sel.any():
                loss = loss + args.seg_weight * F.binary_cross_entropy_with_logits(seg[sel], tb[sel], pos_weight=seg_pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                with torch.no_grad():
                    for pe, pn in zip(ema.parameters(), net.parameters()):
                        pe.mul_(args.ema).add_(pn, alpha=1 - args.ema)
                    for be, bn in zip(ema.buffers(), net.buffers()):
                        be.copy_(bn)
            total += float(loss) * len(yb)
        note = ''
        if val:
            score_net = ema if ema is not None else net
            v_auc = metrics(score_net, *val, args.threshold)[0]['image_auroc']  # single view: cheap, ranks epochs
            note = f' val_auroc {v_auc:.4f}'
            if args.keep_best and epoch + 1 > args.epochs // 2 and v_auc >= best[0]:
                best = (v_auc, epoch + 1, copy.deepcopy(score_net.state_dict()))
        print(f'epoch {epoch + 1}/{args.epochs} loss {total / len(y):.4f}{note} ({time.time() - t1:.0f}s)', flush=True)
    t_train = time.time() - t1
    if ema is not None:
        net = ema
    if best[2] is not None:
        net.load_state_dict(best[2])
        print(f'kept epoch {best[1]} (val_auroc {best[0]:.4f})', flush=True)
    return net, t_train
