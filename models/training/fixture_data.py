"""The synthetic fixtures (scripts/generate-test-images.ts) as tensors, preprocessed exactly as the appliance
does it for the default model: the PNG decoder (zlib + numpy; Debian's python3 has no PIL), the 4x4 area pool and
normalisation, a split's ground-truth.json with its masks, and the cell targets. Used by train.py."""
import json
import os
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F

POOL = 4            # frame -> model input (area resize)
CELL = 8            # model input -> output map (one output cell = 32x32 frame pixels)
SCALE = 1.0 / 255.0
MEAN = 0.5
STD = 0.25
IN_H, IN_W = 256, 320
OUT_H, OUT_W = IN_H // CELL, IN_W // CELL


def read_png_gray8(path):
    """Decode an 8-bit greyscale, non-interlaced PNG (what the generator writes) to uint8 HxW."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError(f'{path}: not a PNG')
    pos, idat, w = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack('>I', data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if ctype == b'IHDR':
            w, h, depth, colour, _, _, interlace = struct.unpack('>IIBBBBB', body)
            if depth != 8 or colour != 0 or interlace != 0:
                raise ValueError(f'{path}: need 8-bit greyscale non-interlaced, got depth={depth} colour={colour}')
        elif ctype == b'IDAT':
            idat.append(body)
        elif ctype == b'IEND':
            break
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(b''.join(idat)), dtype=np.uint8).reshape(h, w + 1)
    filters, rows = raw[:, 0], raw[:, 1:].astype(np.int32)
    if not filters.any():
        return rows.astype(np.uint8)
    out = np.zeros((h, w), dtype=np.int32)
    prev = np.zeros(w, dtype=np.int32)
    for y in range(h):
        ft, r = int(filters[y]), rows[y]
        if ft == 0:
            cur = r
        elif ft == 1:
            cur = np.cumsum(r) % 256
        elif ft == 2:
            cur = (r + prev) % 256
        else:
            cur = np.zeros(w, dtype=np.int32)
            for x in range(w):
                a = int(cur[x - 1]) if x else 0
                b = int(prev[x])
                if ft == 3:
                    pred = (a + b) // 2
                else:
                    c = int(prev[x - 1]) if x else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (int(r[x]) + pred) % 256
        out[y] = cur
        prev = cur
    return out.astype(np.uint8)


def preprocess(frames_u8):
    """[N,1,1024,1280] uint8 -> [N,1,256,320] float32, exactly as the appliance does it."""
    p = F.avg_pool2d(frames_u8.float(), POOL)
    return (p * SCALE - MEAN) / STD


def load_split(folder):
    """Pooled inputs [N,1,256,320], pooled masks [N,1,256,320] (0/1), labels [N], classes."""
    with open(os.path.join(folder, 'ground-truth.json')) as f:
        gt = json.load(f)
    xs, ms, labels, classes = [], [], [], []
    for im in gt['images']:
        frame = torch.from_numpy(read_png_gray8(os.path.join(folder, im['file'])))[None, None]
        if frame.shape[-2:] != (gt['height'], gt['width']):
            raise ValueError(f"{im['file']}: size {tuple(frame.shape)}")
        xs.append(preprocess(frame))
        if im['mask']:
            m = torch.from_numpy(read_png_gray8(os.path.join(folder, im['mask'])))[None, None]
            ms.append(F.max_pool2d((m >= 128).float(), POOL))
        else:
            ms.append(torch.zeros(1, 1, IN_H, IN_W))
        labels.append(1.0 if im['label'] == 'defect' else 0.0)
        classes.append(im['defect'] or 'good')
    return torch.cat(xs), torch.cat(ms), torch.tensor(labels), classes


def cell_targets(masks):
    """Pooled masks [N,1,256,320] -> [N,1,32,40]: a cell is positive if any defect pixel is in it."""
    return F.max_pool2d(masks, CELL)
