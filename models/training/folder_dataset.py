"""Reading a Folder (Anomalib "Folder" / MVTec AD style) split and turning it into model inputs, as the appliance does.

- list_folder: the (image, label, class, mask) items of one split; carve: a seeded per-class validation carve-out.
- decode: images are decoded by the appliance's own decoder (sharp, through decode_images.ts).
- preprocess / letterbox_geometry: the resize (linear or letterbox) and normalisation that the manifest declares and
  the appliance compiles in front of model.onnx (inspector/inference/preprocess-graph.ts).
- mask_cells / load: the 1/8-resolution cell targets of the masks and the cached tensors of a whole split.
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

SCALE = 1.0 / 255.0
MEAN = 0.5
STD = 0.25
CELL = 8
IMG_EXT = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    return F.max_pool2d(_letterboxed(m, size, 0.0), CELL)


def _letterboxed(m, size, threshold):
    """A 0/1 mask [1,1,h,w] placed like a letterboxed image: bilinear to the aspect-keeping size (letterbox_geometry),
    > threshold, zero-padded to S x S."""
    rh, rw, top, left = letterbox_geometry(m.shape[-2], m.shape[-1], size)
    r = (F.interpolate(m, size=(rh, rw), mode='bilinear', align_corners=False) > threshold).float()
    return F.pad(r, (left, size - rw - left, top, size - rh - top))


def pixel_masks(items, size, resize='linear'):
    """The S x S 0/1 pixel masks [N,1,S,S] (resized like the images: bilinear > 0.5, letterboxed alike) of the
    items that have a mask file, and their indices."""
    idx = [i for i, it in enumerate(items) if it[3]]
    out = []
    for m_u8 in decode([items[i][3] for i in idx]):
        m = torch.from_numpy((m_u8 >= 128).astype(np.float32))[None, None]
        if resize == 'letterbox':
            out.append(_letterboxed(m, size, 0.5))
        else:
            out.append((F.interpolate(m, size=(size, size), mode='bilinear', align_corners=False) > 0.5).float())
    return (torch.cat(out) if out else torch.zeros(0, 1, size, size)), idx


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


def carve(items, fraction, seed):
    """A seeded, per-class validation carve-out of a training split -> (train indices, validation indices)."""
    rng, val = random.Random(seed), []
    for cls in sorted(set(it[2] for it in items)):
        idx = [i for i, it in enumerate(items) if it[2] == cls]
        rng.shuffle(idx)
        val += idx[:round(len(idx) * fraction)]
    val = sorted(val)
    return [i for i in range(len(items)) if i not in set(val)], val
