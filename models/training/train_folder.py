#!/usr/bin/python3
"""Train a small defect segmenter from a Folder (Anomalib "Folder" / MVTec AD style) dataset,
the format the appliance exports, and write a complete model package (schema version 2).

    /usr/bin/python3 models/training/train_folder.py --data EXPORT/train --test-data EXPORT/test \
        --out models/<name>/<version> --name <name> --version 1.0.0 --size 256 --epochs 60 --rot90 --seed 1

Dataset layout (one split):

    good/*.png|jpg...                 good parts
    defect/<class>/*.png|jpg...       defective parts, one folder per defect class
    masks/<class>/<stem>.<ext>        optional pixel masks (same stem as the image; >= 128 = defect)

(MVTec AD's own `<class>/` + `ground_truth/<class>/<stem>_mask.png` is read too.)

Images of any size are decoded by the appliance's own decoder (sharp, through
decode_images.ts) and resized to --size x --size with a bilinear resize
(half-pixel centres, no antialiasing) and normalised x = (p/255 - 0.5)/0.25:
the manifest declares exactly that (`resize: linear`), and the appliance
compiles it in front of model.onnx, so train and station preprocess alike.
With --resize letterbox the aspect ratio is kept and the rest padded with the
image mean (`resize: letterbox`, see letterbox_geometry / preprocess).

Network: per-image standardisation, 3 stride-2 conv blocks, 2 dilated context
blocks, a 1x1 segmentation head (map, 1/8 resolution, the defect area) and an
image head (one more stride-2 block, global average + max pool, linear: the
score, which decides). Outputs:
`map` = sigmoid(seg logits) [1,1,S/8,S/8], `score` = sigmoid(image logit) [1].
"""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import auroc, block, dumps_compact, sha256_file  # noqa: E402  (shared helpers of the default trainer)

SCALE = 1.0 / 255.0
MEAN = 0.5
STD = 0.25
CELL = 8
IMG_EXT = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------- data

def _images(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMG_EXT))


def _find_mask(root, cls, image_path):
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for folder, suffix in ((os.path.join(root, 'masks', cls), ''), (os.path.join(root, 'ground_truth', cls), '_mask')):
        for ext in IMG_EXT:
            p = os.path.join(folder, stem + suffix + ext)
            if os.path.isfile(p):
                return p
    return None


def list_folder(root):
    """[(image, label 0/1, class, mask or None)] of a Folder/MVTec split, in a stable order."""
    items = [(p, 0, 'good', None) for p in _images(os.path.join(root, 'good'))]
    defect_root = os.path.join(root, 'defect')
    if os.path.isdir(defect_root):
        classes = sorted(d for d in os.listdir(defect_root) if os.path.isdir(os.path.join(defect_root, d)))
        base = defect_root
    else:  # MVTec AD: every folder but good/ and ground_truth/ is a defect class
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                         and d not in ('good', 'masks', 'ground_truth', 'train', 'test'))
        base = root
    for cls in classes:
        items += [(p, 1, cls, _find_mask(root, cls, p)) for p in _images(os.path.join(base, cls))]
    if not items:
        sys.exit(f'{root}: no images (expected good/ and defect/<class>/)')
    return items


def decode(paths):
    """Decode with the appliance's decoder (sharp via decode_images.ts) -> list of uint8 HxW arrays."""
    tsx = os.environ.get('INSPECTOR_TSX', os.path.join(REPO, 'node_modules', '.bin', 'tsx'))
    script = os.path.join(REPO, 'models', 'training', 'decode_images.ts')
    proc = subprocess.run([tsx, script], input=json.dumps([os.path.abspath(p) for p in paths]).encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        sys.exit(f'decoding failed: {proc.stderr.decode(errors="replace").strip()}')
    out, buf, pos = [], proc.stdout, 0
    for _ in paths:
        w, h = np.frombuffer(buf, dtype='<u4', count=2, offset=pos)
        pos += 8
        out.append(np.frombuffer(buf, dtype=np.uint8, count=int(w) * int(h), offset=pos).reshape(int(h), int(w)))
        pos += int(w) * int(h)
    return out


def letterbox_geometry(h, w, size):
    """(rh, rw, top, left): the letterbox resize of an h x w image into size x size (the appliance's rule in
    inspector/inference/preprocess-graph.ts): scale s = min(S/w, S/h), resized to round(w s) x round(h s)
    (half up, 1..S), centred, the left/top pad the smaller half."""
    s = min(size / w, size / h)
    rw, rh = min(size, max(1, int(np.floor(w * s + 0.5)))), min(size, max(1, int(np.floor(h * s + 0.5))))
    return rh, rw, (size - rh) // 2, (size - rw) // 2


def preprocess(img_u8, size, resize='linear'):
    """uint8 HxW -> [1,1,S,S] float32, exactly what the compiled manifest graph does.
    linear: Cast, Resize (bilinear, half-pixel) to S x S, Mul/Add.
    letterbox: Cast, Resize to the aspect-keeping size (letterbox_geometry), Mul/Add, then pad to S x S with the
    resized image's mean (GlobalAveragePool, Sub, Pad 0, Add)."""
    x = torch.from_numpy(img_u8.copy())[None, None].float()
    h, w = x.shape[-2:]
    if resize == 'letterbox':
        rh, rw, top, left = letterbox_geometry(h, w, size)
        if (rh, rw) != (h, w):
            x = F.interpolate(x, size=(rh, rw), mode='bilinear', align_corners=False)
        x = (x * SCALE - MEAN) / STD
        if (rh, rw) != (size, size):
            m = x.mean(dim=(2, 3), keepdim=True)
            x = F.pad(x - m, (left, size - rw - left, top, size - rh - top)) + m
        return x
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    return (x * SCALE - MEAN) / STD


def mask_cells(mask_u8, size, resize):
    """Cell targets [1,1,S/8,S/8] of a mask (>= 128 = defect): a cell is positive if any defect pixel falls in it."""
    m = torch.from_numpy((mask_u8 >= 128).astype(np.float32))[None, None]
    cells = size // CELL
    if resize != 'letterbox':
        return F.adaptive_max_pool2d(m, (cells, cells))
    rh, rw, top, left = letterbox_geometry(m.shape[-2], m.shape[-1], size)
    r = (F.interpolate(m, size=(rh, rw), mode='bilinear', align_corners=False) > 0).float()
    return F.max_pool2d(F.pad(r, (left, size - rw - left, top, size - rh - top)), CELL)


def load(items, size, resize='linear'):
    imgs = decode([it[0] for it in items])
    mask_items = [(i, it[3]) for i, it in enumerate(items) if it[3]]
    masks = dict(zip([i for i, _ in mask_items], decode([m for _, m in mask_items]))) if mask_items else {}
    xs, ts, has_mask = [], [], []
    cells = size // CELL
    for i, (path, label, _, _) in enumerate(items):
        xs.append(preprocess(imgs[i], size, resize))
        if i in masks:
            if masks[i].shape != imgs[i].shape:
                sys.exit(f'{path}: mask size {masks[i].shape} != image size {imgs[i].shape}')
            ts.append(mask_cells(masks[i], size, resize))
        else:
            ts.append(torch.zeros(1, 1, cells, cells))
        # a defect without a (non-empty) mask says nothing about where: no segmentation loss on it
        has_mask.append(bool(label == 0 or (i in masks and float(ts[-1].sum()) > 0)))
    labels = torch.tensor([float(it[1]) for it in items])
    return torch.cat(xs), torch.cat(ts), labels, torch.tensor(has_mask), [it[2] for it in items]


# ---------------------------------------------------------------- model

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


def fixed_crop(x, t, y, has_mask, gen, crop_size):
    """A random crop_size x crop_size window (cell-aligned, no resize: the scale stays) of each image and its
    target. The label follows the mask: a crop of a defective image with a mask is defective iff the crop holds
    a positive cell; goods stay good; a defect without a mask keeps its label."""
    size, k = x.shape[-1], crop_size // CELL
    xs, ts = [], []
    for i in range(x.shape[0]):
        y0 = int(torch.randint(0, (size - crop_size) // CELL + 1, (1,), generator=gen)) * CELL
        x0 = int(torch.randint(0, (size - crop_size) // CELL + 1, (1,), generator=gen)) * CELL
        xs.append(x[i:i + 1, :, y0:y0 + crop_size, x0:x0 + crop_size])
        ts.append(t[i:i + 1, :, y0 // CELL:y0 // CELL + k, x0 // CELL:x0 // CELL + k])
    xc, tc = torch.cat(xs), torch.cat(ts)
    yc = torch.where(has_mask, (tc.amax(dim=(1, 2, 3)) > 0).float(), y)
    return xc, tc, yc


def zoom(x, t, gen, z):
    """Random anisotropic scale: x and y each by a factor in [1/(1+z), 1+z] (log-uniform), shifted by up to 10 % of
    the side, image bilinear and target (cells) bilinear > 0 (a positive cell is never skipped), both with
    reflection at the borders. Makes the net less sensitive to how much a crop was stretched."""
    n = x.shape[0]
    r = torch.rand(n, 4, generator=gen)
    lim = float(np.log1p(z))
    sx, sy = torch.exp((r[:, 0] * 2 - 1) * lim), torch.exp((r[:, 1] * 2 - 1) * lim)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = 1 / sx, 1 / sy
    theta[:, 0, 2], theta[:, 1, 2] = (r[:, 2] * 2 - 1) * 0.2, (r[:, 3] * 2 - 1) * 0.2
    gx = F.affine_grid(theta, list(x.shape), align_corners=False)
    gt = F.affine_grid(theta, list(t.shape), align_corners=False)
    xz = F.grid_sample(x, gx, mode='bilinear', padding_mode='reflection', align_corners=False)
    tz = (F.grid_sample(t, gt, mode='bilinear', padding_mode='reflection', align_corners=False) > 1e-6).float()
    return xz, tz


def augment(x, t, gen, rot90=False, crop=0.0, contrast=0.0):
    """Random h/v flips (and with rot90 transposes; square inputs), image and target alike; with crop > 0 a
    random crop of (1-crop..1) of each side resized back (image bilinear, target max-pooled), a +/-20 %
    contrast change about the mean; and +/-5 % gain, +/-5 grey levels."""
    x, t = x.clone(), t.clone()
    size, cells = x.shape[-1], t.shape[-1]
    for i in range(x.shape[0]):
        if rot90 and torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].transpose(-1, -2).clone(), t[i].transpose(-1, -2).clone()
        if torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].flip(-1).clone(), t[i].flip(-1).clone()
        if torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].flip(-2).clone(), t[i].flip(-2).clone()
        if crop > 0:
            fh, fw = (1 - crop * torch.rand(2, generator=gen)).tolist()
            ch, cw = max(CELL, int(round(cells * fh)) * CELL), max(CELL, int(round(cells * fw)) * CELL)
            y0 = int(torch.randint(0, (size - ch) // CELL + 1, (1,), generator=gen)) * CELL
            x0 = int(torch.randint(0, (size - cw) // CELL + 1, (1,), generator=gen)) * CELL
            xi = x[i:i + 1, :, y0:y0 + ch, x0:x0 + cw]
            ti = t[i:i + 1, :, y0 // CELL:(y0 + ch) // CELL, x0 // CELL:(x0 + cw) // CELL]
            x[i] = F.interpolate(xi, size=(size, size), mode='bilinear', align_corners=False)[0]
            t[i] = F.adaptive_max_pool2d(ti, (cells, cells))[0]
            c = 1 + (torch.rand(1, generator=gen).item() - 0.5) * 0.4
            m = x[i].mean()
            x[i] = (x[i] - m) * c + m
        if contrast > 0:
            c = 1 + (torch.rand(1, generator=gen).item() * 2 - 1) * contrast
            m = x[i].mean()
            x[i] = (x[i] - m) * c + m
        gain = 1 + (torch.rand(1, generator=gen).item() - 0.5) * 0.1
        offset = (torch.rand(1, generator=gen).item() - 0.5) * 0.16
        x[i] = ((x[i] * STD + MEAN) * gain - MEAN) / STD + offset
    return x, t


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


def carve(items, fraction, seed):
    """A seeded, per-class validation carve-out of a training split -> (train indices, validation indices)."""
    rng, val = random.Random(seed), []
    for cls in sorted(set(it[2] for it in items)):
        idx = [i for i, it in enumerate(items) if it[2] == cls]
        rng.shuffle(idx)
        val += idx[:round(len(idx) * fraction)]
    val = sorted(val)
    return [i for i in range(len(items)) if i not in set(val)], val


def load_members(args):
    """The nets of --ensemble (their --save-state files); each must match --size and --resize."""
    nets = []
    for path in args.ensemble.split(','):
        st = torch.load(path)
        if st['size'] != args.size or st['resize'] != args.resize:
            sys.exit(f'{path}: trained at size {st["size"]} resize {st["resize"]}, not {args.size} {args.resize}')
        n = Net(tuple(int(w) for w in st['widths'].split(',')), standardise=st['standardise'])
        n.load_state_dict(st['state'])
        nets.append(n.eval())
    return nets


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='training split in Folder layout (good/, defect/<class>/, masks/<class>/)')
    ap.add_argument('--test-data', default=None, help='held-out split in the same layout (metrics only)')
    ap.add_argument('--out', required=True, help='package folder to write (<name>/<version>)')
    ap.add_argument('--name', required=True)
    ap.add_argument('--version', default='1.0.0')
    ap.add_argument('--size', type=int, default=256, help='model input is size x size (multiple of 8)')
    ap.add_argument('--widths', default='16,32,64')
    ap.add_argument('--epochs', type=int, default=60)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--threshold', type=float, default=0.5)
    ap.add_argument('--seg-weight', type=float, default=1.0, help='weight of the segmentation loss')
    ap.add_argument('--max-images', type=int, default=0, help='use at most N good and N defective images (smoke runs)')
    ap.add_argument('--description', default=None)
    ap.add_argument('--crop', type=float, default=0.0, help='random crops of up to this fraction per side, resized back (+ contrast jitter)')
    ap.add_argument('--resize', choices=['linear', 'letterbox'], default='linear',
                    help='linear: stretch to size x size; letterbox: keep the aspect ratio, pad with the image mean')
    ap.add_argument('--crop-size', type=int, default=0,
                    help='train on random crop-size x crop-size windows (no resize; label from the mask), score full images')
    ap.add_argument('--zoom', type=float, default=0.0,
                    help='random anisotropic scale augmentation: each axis x [1/(1+Z), 1+Z], +/-10 %% shift; label from the mask')
    ap.add_argument('--dropout', type=float, default=0.0, help='dropout on the pooled features of the image head')
    ap.add_argument('--weight-decay', type=float, default=1e-4)
    ap.add_argument('--rot90', action='store_true', help='augment with transposes too (parts without a fixed orientation)')
    ap.add_argument('--contrast', type=float, default=0.0, help='contrast jitter: x (1 +/- this) about the image mean')
    ap.add_argument('--ema', type=float, default=0.0, help='keep an exponential moving average of the weights (e.g. 0.99) and export it')
    ap.add_argument('--tta', type=int, default=1, choices=[1, 4, 8],
                    help='score = mean over 4 (flips) or 8 (flips + transposes) views, inside model.onnx')
    ap.add_argument('--val-fraction', type=float, default=0.0,
                    help='hold out this fraction of each class of --data as a validation split (metrics val_*)')
    ap.add_argument('--keep-best', action='store_true',
                    help='with --val-fraction: export the weights of the epoch (in the second half) with the best validation AUROC')
    ap.add_argument('--no-standardise', action='store_true', help='no per-image standardisation at the network input')
    ap.add_argument('--save-state', default=None, help='also write the trained weights (torch state + options) here')
    ap.add_argument('--ensemble', default=None,
                    help='comma-separated --save-state files: no training; export the mean of these nets (same size/resize)')
    ap.add_argument('--scores-out', default=None,
                    help='write {image path relative to its split: score} of the test split (else the train split) here')
    args = ap.parse_args()
    if args.size % CELL or args.size < 32:
        sys.exit('--size must be a multiple of 8, at least 32')
    if args.crop_size and (args.crop_size % CELL or args.crop_size < 32 or args.crop_size > args.size):
        sys.exit('--crop-size must be a multiple of 8, 32..size')

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    items = list_folder(args.data)
    if args.max_images:
        items = [it for it in items if it[1] == 0][:args.max_images] + [it for it in items if it[1] == 1][:args.max_images]
    x, t, y, has_mask, classes = load(items, args.size, args.resize)
    val = None
    if args.val_fraction > 0:
        tr, va = carve(items, args.val_fraction, args.seed)
        val = (x[va], y[va], [classes[i] for i in va])
        x, t, y, has_mask, classes = x[tr], t[tr], y[tr], has_mask[tr], [classes[i] for i in tr]
        items = [items[i] for i in tr]
    test = None
    if args.test_data:
        test_items = list_folder(args.test_data)
        if args.max_images:
            test_items = [it for it in test_items if it[1] == 0][:args.max_images] + [it for it in test_items if it[1] == 1][:args.max_images]
        tx, _, ty, _, tc = load(test_items, args.size, args.resize)
        test = (tx, ty, tc)
    else:
        test_items = None
    print(f'loaded {len(y)} train ({int(y.sum())} defective, {int(has_mask.sum())} with masks/good) '
          f'{"and %d test " % len(test[1]) if test else ""}images in {time.time() - t0:.1f}s', flush=True)

    net = Net(tuple(int(w) for w in args.widths.split(',')), standardise=not args.no_standardise, dropout=args.dropout)
    members = load_members(args) if args.ensemble else None
    if members:
        args.epochs = 0
    n_params = sum(p.numel() for p in (nn.ModuleList(members) if members else net).parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = (len(y) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(1, args.epochs * steps), pct_start=0.15)
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    img_pos_weight = torch.tensor(n_neg / n_pos if n_pos and n_neg else 1.0)
    pos_frac = float(t[has_mask].mean()) if has_mask.any() else 0.0
    seg_pos_weight = torch.tensor(min(20.0, (1 - pos_frac) / pos_frac) if pos_frac > 0 else 1.0)
    print(f'parameters {n_params}; positive cells {pos_frac:.4f} -> seg pos_weight {float(seg_pos_weight):.2f}'
          + (f'; validation {len(val[1])} images' if val else ''), flush=True)
    ema = copy.deepcopy(net) if args.ema > 0 else None
    best = (-1.0, 0, None)  # (validation AUROC, epoch, state_dict)

    t1 = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for b in range(steps):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb, tb, yb = x[idx], t[idx], y[idx]
            if args.crop_size and args.crop_size < args.size:
                xb, tb, yb = fixed_crop(xb, tb, yb, has_mask[idx], gen, args.crop_size)
            if args.zoom > 0:
                xb, tb = zoom(xb, tb, gen, args.zoom)
                yb = torch.where(has_mask[idx], (tb.amax(dim=(1, 2, 3)) > 0).float(), yb)
            xb, tb = augment(xb, tb, gen, rot90=args.rot90, crop=args.crop, contrast=args.contrast)
            seg, logit = net(xb)
            loss = F.binary_cross_entropy_with_logits(logit, yb, pos_weight=img_pos_weight)
            sel = has_mask[idx]
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
            total += float(loss) * len(idx)
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
    if args.save_state and not members:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_state)), exist_ok=True)
        torch.save({'widths': args.widths, 'standardise': not args.no_standardise, 'size': args.size,
                    'resize': args.resize, 'command': ' '.join(sys.argv), 'state': net.state_dict()}, args.save_state)
    if members:
        net = members

    train_m, train_scores = metrics(net, x, y, classes, args.threshold, args.tta)
    val_m = metrics(net, *val, args.threshold, args.tta)[0] if val else {}
    test_m, test_scores = metrics(net, *test, args.threshold, args.tta) if test else ({}, None)
    if args.scores_out:
        root, its, sc = (args.test_data, test_items, test_scores) if test else (args.data, items, train_scores)
        os.makedirs(os.path.dirname(os.path.abspath(args.scores_out)), exist_ok=True)
        with open(args.scores_out, 'w') as f:
            json.dump({os.path.relpath(it[0], root): float(v) for it, v in zip(its, sc)}, f, indent=0)
    print('train', json.dumps({k: round(v, 4) for k, v in train_m.items()}))
    if val:
        print('val  ', json.dumps({k: round(v, 4) for k, v in val_m.items()}))
    if test:
        print('test ', json.dumps({k: round(v, 4) for k, v in test_m.items()}))

    # ------------------------------------------------------------ export
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, 'model.onnx')
    exported = Exported(net, args.tta).eval()
    s, cells = args.size, args.size // CELL
    torch.onnx.export(exported, (x[:1].clone(),), model_path, input_names=['image'], output_names=['map', 'score'],
                      opset_version=13, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    import onnx
    model = onnx.load(model_path)
    onnx.checker.check_model(model)
    io = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in list(model.graph.input) + list(model.graph.output)}
    expected = {'image': [1, 1, s, s], 'map': [1, 1, cells, cells], 'score': [1]}
    if io != expected:
        sys.exit(f'exported graph has {io}, expected {expected}')

    r = lambda v: round(float(v), 6)
    command = (f'/usr/bin/python3 models/training/train_folder.py --data {args.data}'
               + (f' --test-data {args.test_data}' if args.test_data else '')
               + f' --out {args.out} --name {args.name} --version {args.version} --size {args.size} --widths {args.widths}'
               f' --epochs {args.epochs} --batch {args.batch} --lr {args.lr} --seed {args.seed} --threads {args.threads}'
               f' --threshold {args.threshold} --seg-weight {args.seg_weight}'
               + (f' --resize {args.resize}' if args.resize != 'linear' else '')
               + (f' --crop-size {args.crop_size}' if args.crop_size else '')
               + (f' --zoom {args.zoom}' if args.zoom else '')
               + (' --rot90' if args.rot90 else '') + (' --no-standardise' if args.no_standardise else '')
               + (f' --crop {args.crop}' if args.crop else '') + (f' --dropout {args.dropout}' if args.dropout else '')
               + (f' --weight-decay {args.weight_decay}' if args.weight_decay != 1e-4 else '')
               + (f' --contrast {args.contrast}' if args.contrast else '') + (f' --ema {args.ema}' if args.ema else '')
               + (f' --tta {args.tta}' if args.tta > 1 else '')
               + (f' --val-fraction {args.val_fraction}' if args.val_fraction else '')
               + (' --keep-best' if args.keep_best else '')
               + (f' --save-state {args.save_state}' if args.save_state else '')
               + (f' --ensemble {args.ensemble}' if args.ensemble else '')
               + (f' --max-images {args.max_images}' if args.max_images else ''))
    defect_classes = sorted(set(classes) - {'good'}) or ['defect']
    manifest = {
        'schemaVersion': 2,
        'name': args.name,
        'version': args.version,
        'description': args.description or (
            f'Defect segmenter trained from a Folder dataset ({", ".join(defect_classes)}): map = defect probability per '
            f'{CELL}x{CELL} cell of the {s}x{s} model input, score = image-level defect probability.'),
        'input': {'name': 'image', 'shape': [1, 1, s, s], 'dtype': 'float32', 'layout': 'NCHW', 'colour': 'gray',
                  'resize': args.resize, 'normalisation': {'scale': SCALE, 'mean': [MEAN], 'std': [STD]}},
        'outputs': {'kind': 'segmentation', 'score': {'name': 'score', 'shape': [1]},
                    'map': {'name': 'map', 'shape': [1, 1, cells, cells]},
                    'classes': ['good', 'defect'], 'defectClasses': ['defect']},
        'decision': {'threshold': args.threshold, 'minDefectAreaPx': 0},
        'training': {
            'data': f'{args.data} (Folder layout: good/, defect/<class>/, masks/<class>/)'
                    + (f'; evaluated on {args.test_data}' if args.test_data else ''),
            'script': 'models/training/train_folder.py',
            'command': command,
            'framework': f'torch {torch.__version__}, onnx {onnx.__version__}, opset 13',
            'parameters': n_params,
            'images': {'train': len(y), 'trainDefective': int(y.sum()), 'validation': len(val[1]) if val else 0,
                       'test': len(test[1]) if test else 0},
            'defectClassesSeen': defect_classes,
            'metrics': {**{f'train_{k}': r(v) for k, v in train_m.items() if np.isfinite(v)},
                        **{f'val_{k}': r(v) for k, v in val_m.items() if np.isfinite(v)},
                        **{f'test_{k}': r(v) for k, v in test_m.items() if np.isfinite(v)},
                        'epochs': args.epochs, 'seconds': round(t_train, 1)},
        },
        'sha256': sha256_file(model_path),
    }
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        f.write(dumps_compact(manifest) + '\n')
    print(f'wrote {args.out} (total {time.time() - t0:.0f}s)')


if __name__ == '__main__':
    main()
