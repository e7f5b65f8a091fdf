#!/usr/bin/python3
"""Train the default defect segmenter on the synthetic fixtures and package it.

Run with Debian's interpreter (it has torch 1.13 and onnx):

    /usr/bin/python3 models/training/train.py --data test-images/train \
        --test-data test-images/test --out models/default/1.0.0 \
        --epochs 40 --seed 1 --name default --version 1.0.0

Preprocessing is EXACTLY what the appliance compiles from the manifest and
prepends to the exported graph: full 1280x1024 uint8 frame -> float -> 4x4
average pool (stride 4) -> x = (p * 1/255 - 0.5) / 0.25. The exported ONNX
graph takes that preprocessed tensor: input "image", [1,1,256,320] float32.
Outputs: "anomaly_map" = sigmoid(logits) [1,1,32,40] and "score" = max of the
map, [1].
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules
from fixture_data import IN_H, IN_W, MEAN, OUT_H, OUT_W, SCALE, STD, cell_targets, load_split  # noqa: E402
from training_common import auroc, block, dumps_compact, sha256_file  # noqa: E402,F401  (re-exported)
from progress import Progress  # noqa: E402

# ---------------------------------------------------------------- model

class Segmenter(nn.Module):
    """Fully-convolutional: 3 stride-2 blocks to 1/8, 2 dilated context blocks, 1x1 head -> logits."""

    def __init__(self, widths=(8, 16, 32)):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            block(1, w1, stride=2),                 # 128x160
            block(w1, w2, stride=2),                # 64x80
            block(w2, w3, stride=2),                # 32x40
            block(w3, w3, dilation=2),
            block(w3, w3, dilation=4),              # receptive field ~ 110 px of input = 440 frame px
        )
        self.head = nn.Conv2d(w3, 1, 1)
        # start from "almost surely good" (p ~ 0.018): defect cells are rare, and a 0.5 start
        # spends the first epochs just pushing the whole map down
        nn.init.constant_(self.head.bias, -4.0)

    def forward(self, x):
        return self.head(self.features(x))


class Exported(nn.Module):
    """What goes into model.onnx: preprocessed image -> (anomaly_map, score)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        amap = torch.sigmoid(self.net(image))
        score = torch.amax(amap, dim=(1, 2, 3))
        return amap, score


# ---------------------------------------------------------------- training

def augment(x, m, gen):
    """Same random flips/shift for image and mask, plus a small gain/offset (in normalised units)."""
    n = x.shape[0]
    out_x, out_m = torch.empty_like(x), torch.empty_like(m)
    for i in range(n):
        xi, mi = x[i], m[i]
        if torch.rand(1, generator=gen).item() < 0.5:
            xi, mi = xi.flip(-1), mi.flip(-1)
        if torch.rand(1, generator=gen).item() < 0.5:
            xi, mi = xi.flip(-2), mi.flip(-2)
        dy, dx = (int(v) for v in torch.randint(-8, 9, (2,), generator=gen))
        xi, mi = torch.roll(xi, (dy, dx), (-2, -1)), torch.roll(mi, (dy, dx), (-2, -1))
        gain = 1 + (torch.rand(1, generator=gen).item() - 0.5) * 0.1        # +/-5 % brightness
        offset = (torch.rand(1, generator=gen).item() - 0.5) * 0.16          # +/-5 grey levels
        # gain applies to raw pixels: x_raw = (x*STD + MEAN)/SCALE; back to normalised form
        out_x[i] = ((xi * STD + MEAN) * gain - MEAN) / STD + offset
        out_m[i] = mi
    return out_x, out_m


POS_WEIGHT = 10.0   # ~0.25 % of cells are positive: weigh them up
GRAD_CLIP = 1.0


def loss_fn(logits, target):
    """Per-cell BCE against the 32x40 cell targets, positives up-weighted.

    No image-level term while training: a BCE on the max cell (multiple-instance
    style) sends its gradient to one cell per image, which from a random start
    is rarely the defect; in trials it made training collapse to a fixed hot
    spot. The score is calibrated after training instead (calibrate_head_bias).
    """
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(POS_WEIGHT))


@torch.no_grad()
def max_logits(net, x):
    net.eval()
    return torch.cat([net(x[i:i + 32]).amax(dim=(1, 2, 3)) for i in range(0, x.shape[0], 32)])


@torch.no_grad()
def calibrate_head_bias(net, head, x, labels):
    """Shift the head bias by b so that the decision threshold 0.5 (logit 0) sits between the classes.

    z_i = max logit of image i on x (eval mode, no augmentation). If the training
    images are separable, logit 0 goes to the middle of the gap
    (b = -(max z_good + min z_defect) / 2: the widest margin on both sides).
    Otherwise b solves sum_i sigmoid(z_i + b) = sum_i y_i (image-level BCE
    stationary point, by bisection). Only a shift: the map's ranking and the
    AUROC are unchanged. Returns (b, z_good_max, z_defect_min) before the shift.
    """
    z = max_logits(net, x).double()
    y = labels.double()
    z_good_max, z_defect_min = float(z[y == 0].max()), float(z[y == 1].min())
    if z_good_max < z_defect_min:
        b = -(z_good_max + z_defect_min) / 2
    else:
        lo, hi = -50.0, 50.0
        for _ in range(200):
            mid = (lo + hi) / 2
            if float((torch.sigmoid(z + mid) - y).sum()) > 0:
                hi = mid
            else:
                lo = mid
        b = (lo + hi) / 2
    head.bias += b
    return b, z_good_max, z_defect_min


@torch.no_grad()
def evaluate(net, x, masks, labels, classes, threshold):
    net.eval()
    logits = torch.cat([net(x[i:i + 32]) for i in range(0, x.shape[0], 32)])
    amap = torch.sigmoid(logits)
    scores = amap.amax(dim=(1, 2, 3))
    pred = (scores >= threshold).float()
    y = labels
    tp = float(((pred == 1) & (y == 1)).sum())
    fp = float(((pred == 1) & (y == 0)).sum())
    n_pos, n_neg = float((y == 1).sum()), float((y == 0).sum())
    # localisation: on defective images, does the hottest cell lie on a defect cell (+/-1 cell)?
    tgt = F.max_pool2d(cell_targets(masks), 3, stride=1, padding=1)
    hottest = amap.flatten(1).argmax(dim=1)
    hit = tgt.flatten(1).gather(1, hottest[:, None])[:, 0]
    metrics = {
        'accuracy': float((pred == y).float().mean()),
        'recall': tp / n_pos if n_pos else float('nan'),
        'false_reject_rate': fp / n_neg if n_neg else float('nan'),
        'image_auroc': auroc(scores.numpy(), y.numpy()),
        'localisation_hit_rate': float(hit[y == 1].mean()) if n_pos else float('nan'),
        'max_good_score': float(scores[y == 0].max()) if n_neg else float('nan'),
        'min_defect_score': float(scores[y == 1].min()) if n_pos else float('nan'),
    }
    for cls in sorted(set(classes) - {'good'}):
        idx = torch.tensor([c == cls for c in classes])
        metrics[f'recall_{cls}'] = float(pred[idx].mean())
    return metrics, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='test-images/train', help='training split folder (ground-truth.json, parts/, masks/)')
    ap.add_argument('--test-data', default=None, help='evaluation split (default: sibling "test" of --data)')
    ap.add_argument('--out', default='models/default/1.0.0')
    ap.add_argument('--epochs', type=int, default=40)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--threshold', type=float, default=0.5)
    ap.add_argument('--scores-out', default=None, help='write the per-image test scores (JSON list) here')
    ap.add_argument('--widths', default='8,16,32',
                    help='channels of the three downsampling blocks (the context blocks keep the last): '
                         'the inference budget on a 2-core station is what sets them')
    ap.add_argument('--name', default='default')
    ap.add_argument('--version', default='1.0.0')
    args = ap.parse_args()
    test_dir = args.test_data or os.path.join(os.path.dirname(os.path.normpath(args.data)), 'test')

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    x_tr, m_tr, y_tr, c_tr = load_split(args.data)
    x_te, m_te, y_te, c_te = load_split(test_dir)
    t_load = time.time() - t0
    print(f'loaded {len(y_tr)} train / {len(y_te)} test images in {t_load:.1f}s', flush=True)

    net = Segmenter(tuple(int(w) for w in args.widths.split(',')))
    n_params = sum(p.numel() for p in net.parameters())
    print(f'parameters: {n_params}', flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = (len(y_tr) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15)

    t1 = time.time()
    # a line on stderr at least every 30 s (steps done/total, rate, ETA), so a redirected run says where it is
    progress = Progress('train (steps)', args.epochs * steps_per_epoch)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(y_tr), generator=gen)
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xb, mb = augment(x_tr[idx], m_tr[idx], gen)
            loss = loss_fn(net(xb), cell_targets(mb))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
            progress.update(epoch * steps_per_epoch + b + 1, f' (epoch {epoch + 1}/{args.epochs})')
        print(f'epoch {epoch + 1}/{args.epochs} loss {total / len(y_tr):.4f} ({time.time() - t1:.0f}s)', flush=True)
    progress.close()
    t_train = time.time() - t1

    raw_test, _ = evaluate(net, x_te, m_te, y_te, c_te, args.threshold)
    print('test before calibration', json.dumps({k: round(v, 4) for k, v in raw_test.items()}))
    bias, z_good, z_defect = calibrate_head_bias(net, net.head, x_tr, y_tr)
    print(f'calibration on train: max good logit {z_good:.3f}, min defect logit {z_defect:.3f} -> head bias {bias:+.3f}')

    train_metrics, _ = evaluate(net, x_tr, m_tr, y_tr, c_tr, args.threshold)
    test_metrics, test_scores = evaluate(net, x_te, m_te, y_te, c_te, args.threshold)
    if args.scores_out:
        with open(args.scores_out, 'w') as f:
            json.dump([round(float(v), 7) for v in test_scores], f)
    print('train', json.dumps({k: round(v, 4) for k, v in train_metrics.items()}))
    print('test ', json.dumps({k: round(v, 4) for k, v in test_metrics.items()}))

    # ------------------------------------------------------------ export
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, 'model.onnx')
    exported = Exported(net).eval()
    dummy = x_te[:1].clone()
    torch.onnx.export(exported, (dummy,), model_path, input_names=['image'], output_names=['anomaly_map', 'score'],
                      opset_version=13, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    import onnx
    model = onnx.load(model_path)
    onnx.checker.check_model(model)

    def dims(vi):
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]
    io = {vi.name: dims(vi) for vi in list(model.graph.input) + list(model.graph.output)}
    expected = {'image': [1, 1, IN_H, IN_W], 'anomaly_map': [1, 1, OUT_H, OUT_W], 'score': [1]}
    if io != expected:
        sys.exit(f'exported graph has {io}, expected {expected}')
    if any(n.op_type == 'BatchNormalization' for n in model.graph.node):
        sys.exit('BatchNormalization left in the exported graph (expected folded into Conv)')
    with torch.no_grad():
        amap, score = exported(dummy)
    print(f'exported {model_path}: {os.path.getsize(model_path)} bytes, ops '
          f'{sorted({n.op_type for n in model.graph.node})}; score of test[0] {float(score):.6f}')

    r = lambda v: round(v, 6)
    command = ('/usr/bin/python3 models/training/train.py'
               f' --data {args.data} --test-data {test_dir} --out {args.out}'
               f' --epochs {args.epochs} --seed {args.seed} --widths {args.widths} --name {args.name} --version {args.version}')
    if args.threshold != 0.5:
        command += f' --threshold {args.threshold}'
    manifest = {
        'schemaVersion': 1,
        'name': args.name,
        'version': args.version,
        'description': 'Defect segmenter for the synthetic machined bracket (scratch, spot, crack, missing hole): '
                       'per-cell defect probability on a 32x40 grid (one cell = 32x32 frame pixels), '
                       'score = max cell.',
        'input': {
            'name': 'image', 'shape': [1, 1, IN_H, IN_W], 'dtype': 'float32', 'layout': 'NCHW',
            'colour': 'gray', 'resize': 'area',
            'normalisation': {'scale': SCALE, 'mean': [MEAN], 'std': [STD]},
        },
        'outputs': {
            'kind': 'anomaly_map',
            'score': {'name': 'score', 'shape': [1]},
            'map': {'name': 'anomaly_map', 'shape': [1, 1, OUT_H, OUT_W]},
            'classes': ['good', 'defect'],
            'defectClasses': ['defect'],
        },
        'decision': {'threshold': args.threshold, 'minDefectAreaPx': 0},
        'training': {
            'data': f'{args.data} (synthetic fixtures: npx tsx scripts/generate-test-images.ts --out test-images --seed 1); '
                    f'evaluated on {test_dir}',
            'script': 'models/training/train.py',
            'command': command,
            'framework': f'torch {torch.__version__}, onnx {onnx.__version__}, opset 13',
            'parameters': n_params,
            'calibration': {'headBiasShift': round(bias, 6), 'trainMaxGoodLogit': round(z_good, 6),
                            'trainMinDefectLogit': round(z_defect, 6)},
            'metrics': {
                'test_accuracy': r(test_metrics['accuracy']),
                'test_recall': r(test_metrics['recall']),
                'test_false_reject_rate': r(test_metrics['false_reject_rate']),
                'test_image_auroc': r(test_metrics['image_auroc']),
                'test_localisation_hit_rate': r(test_metrics['localisation_hit_rate']),
                'test_max_good_score': r(test_metrics['max_good_score']),
                'test_min_defect_score': r(test_metrics['min_defect_score']),
                **{f'test_{k}': r(v) for k, v in test_metrics.items() if k.startswith('recall_')},
                'train_accuracy': r(train_metrics['accuracy']),
                'epochs': args.epochs,
                'seconds': round(t_train, 1),
            },
        },
        'sha256': sha256_file(model_path),
    }
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        f.write(dumps_compact(manifest) + '\n')
    print(f'wrote {os.path.join(args.out, "manifest.json")} (total {time.time() - t0:.0f}s)')


if __name__ == '__main__':
    main()
