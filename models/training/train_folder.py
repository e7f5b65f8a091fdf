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
# The pieces live in sibling modules (models/training/README.md has the table): folder_dataset.py (reading a split,
# decoding, preprocessing, mask cells), segmenter.py (Net, Exported with TTA/ensembles), augmentation.py,
# training_loop.py (fit, metrics) and package_writer.py (model.onnx + manifest.json). This file is the CLI.
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules and train.py's shared helpers
from folder_dataset import CELL, carve, decode, list_folder, load, pixel_masks, preprocess  # noqa: E402,F401  (decode, preprocess: used by test/trainer.test.ts)
from package_writer import write_package  # noqa: E402
from segmenter import Net, load_members  # noqa: E402
from distillation import TeacherScores, load_teachers  # noqa: E402
from training_loop import fit, loss_weights, metrics  # noqa: E402


def parse_args():
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
    ap.add_argument('--paste', type=float, default=0.0,
                    help='copy-paste: per good image of a batch, P more examples (int(P), and one more with probability P - int(P)), each with a masked defect of a training image pasted in')
    ap.add_argument('--balance-paste', action='store_true',
                    help='with --paste: count the pasted examples in the image loss weight (good vs defective as the net sees them)')
    ap.add_argument('--paste-move', type=float, default=0.0,
                    help='with --paste: the probability that a pasted defect away from the borders is moved to a random place')
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
    ap.add_argument('--teacher', default=None,
                    help='distil: comma-separated --save-state files whose mean score (over --teacher-views) is the soft image target')
    ap.add_argument('--teacher-views', type=int, default=8, choices=[1, 4, 8], help='test-time views the teachers score each batch with')
    ap.add_argument('--teacher-weight', type=float, default=0.7, help='soft target = (1 - w) x label + w x teacher score')
    ap.add_argument('--consistency', type=float, default=0.0,
                    help='view consistency: also train on a random flip/transpose of each batch, plus this x (logit difference)^2')
    ap.add_argument('--scores-out', default=None,
                    help='write {image path relative to its split: score} of the test split (else the train split) here')
    args = ap.parse_args()
    if args.size % CELL or args.size < 32:
        sys.exit('--size must be a multiple of 8, at least 32')
    if args.crop_size and (args.crop_size % CELL or args.crop_size < 32 or args.crop_size > args.size):
        sys.exit('--crop-size must be a multiple of 8, 32..size')
    return args


def main():
    args = parse_args()
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

    donors = None
    if args.paste > 0:
        pm, pm_idx = pixel_masks(items, args.size, args.resize)
        keep = [k for k, i in enumerate(pm_idx) if y[i] == 1 and float(pm[k].sum()) > 0]
        if not keep:
            sys.exit('--paste needs defective training images with non-empty masks')
        sel = [pm_idx[k] for k in keep]
        donors = (x[sel], pm[keep], t[sel])
        print(f'paste: {len(keep)} masked defects to paste onto good images (p {args.paste}, move {args.paste_move})', flush=True)
    net = Net(tuple(int(w) for w in args.widths.split(',')), standardise=not args.no_standardise, dropout=args.dropout)
    members = load_members(args) if args.ensemble else None
    if members:
        args.epochs = 0
    n_params = sum(p.numel() for p in (nn.ModuleList(members) if members else net).parameters())
    img_pos_weight, seg_pos_weight, pos_frac = loss_weights(t, y, has_mask, args.paste if args.balance_paste else 0.0)
    print(f'parameters {n_params}; image pos_weight {float(img_pos_weight):.3f}; positive cells {pos_frac:.4f} -> seg pos_weight {float(seg_pos_weight):.2f}'
          + (f'; validation {len(val[1])} images' if val else ''), flush=True)
    teacher = None
    if args.teacher and not members:
        nets, t_size, t_resize = load_teachers(args.teacher)
        if t_resize != args.resize:
            sys.exit(f'--teacher: trained with --resize {t_resize}, the student uses {args.resize}')
        teacher = TeacherScores(nets, t_size, args.teacher_views, args.teacher_weight)
        print(f'distilling from {len(nets)} teacher(s) at size {t_size}, {args.teacher_views} view(s), weight {args.teacher_weight}', flush=True)
    net, t_train = fit(net, x, t, y, has_mask, val, gen, args, img_pos_weight, seg_pos_weight, donors, teacher)
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

    write_package(args, net, x[:1].clone(), n_params, y, classes, val, test, (train_m, val_m, test_m), t_train)
    print(f'wrote {args.out} (total {time.time() - t0:.0f}s)')


if __name__ == '__main__':
    main()
