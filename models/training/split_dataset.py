#!/usr/bin/python3
"""Make a seeded, stratified train/test split of a research dataset as a Folder-layout
SYMLINK FARM (nothing is copied), and record the split.

    /usr/bin/python3 models/training/split_dataset.py --layout magnetic_tile \
        --data ../shared/datasets/magnetic_tile --out .cache/eval/mt-split --seed 1 --test-fraction 0.3

Writes OUT/train/ and OUT/test/, each with good/, defect/<class>/ and masks/<class>/
(links to the dataset's files), and OUT/split.json (seed, fraction, every file per split).
Layouts: magnetic_tile (MT_Free = good, MT_<Class> = defect class <class>, Imgs/<name>.jpg with
the same-named .png mask).
"""
import argparse
import json
import os
import random
import shutil
import sys


def magnetic_tile(root):
    """{class: [(image, mask or None)]}, 'good' for MT_Free."""
    out = {}
    for d in sorted(os.listdir(root)):
        imgs = os.path.join(root, d, 'Imgs')
        if not d.startswith('MT_') or not os.path.isdir(imgs):
            continue
        cls = 'good' if d == 'MT_Free' else d[3:].lower()
        for f in sorted(os.listdir(imgs)):
            if f.lower().endswith('.jpg'):
                mask = os.path.join(imgs, os.path.splitext(f)[0] + '.png')
                out.setdefault(cls, []).append((os.path.join(imgs, f), mask if os.path.isfile(mask) else None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--layout', choices=['magnetic_tile'], required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--test-fraction', type=float, default=0.3)
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    by_class = magnetic_tile(data)
    if not by_class.get('good'):
        sys.exit(f'{data}: no MT_Free/Imgs/*.jpg')
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)  # a farm of links only: safe to remake
    rng = random.Random(args.seed)
    record = {'layout': args.layout, 'data': args.data, 'seed': args.seed, 'testFraction': args.test_fraction,
              'splits': {'train': {}, 'test': {}}}
    for cls in sorted(by_class):
        files = list(by_class[cls])
        rng.shuffle(files)
        n_test = round(len(files) * args.test_fraction)
        for split, part in (('test', files[:n_test]), ('train', files[n_test:])):
            img_dir = os.path.join(args.out, split, 'good' if cls == 'good' else os.path.join('defect', cls))
            os.makedirs(img_dir, exist_ok=True)
            for img, mask in sorted(part):
                os.symlink(img, os.path.join(img_dir, os.path.basename(img)))
                if cls != 'good' and mask:
                    mdir = os.path.join(args.out, split, 'masks', cls)
                    os.makedirs(mdir, exist_ok=True)
                    os.symlink(mask, os.path.join(mdir, os.path.basename(mask)))
            record['splits'][split][cls] = sorted(os.path.relpath(i, data) for i, _ in part)
    with open(os.path.join(args.out, 'split.json'), 'w') as f:
        json.dump(record, f, indent=1)
    for split in ('train', 'test'):
        counts = {c: len(v) for c, v in record['splits'][split].items()}
        print(split, sum(counts.values()), counts)


if __name__ == '__main__':
    main()
