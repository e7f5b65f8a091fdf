#!/usr/bin/python3
"""Compare image-score readouts of one trained net (a --save-state file) on a held-out split.

    /usr/bin/python3 models/training/score_readouts.py --state .cache/ml/states/mt-s8-256.pt --data .cache/eval/mt-split/test

Prints the image AUROC of: the image head (what model.onnx's `score` is) at 1 and 8 views; the map's maximum at
1 and 8 views; the maximum of the map box-filtered 3x3 / 5x5; the mean of the top k map cells; and mixes of the
image head with the map maximum. It asks whether a cheaper readout of the single-view net gets what the 8 test-time
views get (issue 14: the 8 views lift the small net from 0.918 to 0.965, at 8x the time).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from folder_dataset import list_folder, load  # noqa: E402
from segmenter import net_from_state  # noqa: E402
from training_common import auroc  # noqa: E402
from training_loop import predict  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--state', required=True, help='a --save-state file of train_folder.py')
    ap.add_argument('--data', required=True, help='a split in Folder layout (good/, defect/<class>/)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    st = torch.load(args.state)
    net = net_from_state(st)
    x, _, y, _, _ = load(list_folder(args.data), st['size'], st['resize'])
    yn = y.numpy()

    def a(v):
        return round(auroc(v.numpy(), yn), 4)

    m1, s1 = predict(net, x, 1)
    m8, s8 = predict(net, x, 8)
    mmax = m1.amax(dim=(1, 2, 3))
    res = {'head_1view': a(s1), 'head_8views': a(s8), 'map_max_1view': a(mmax), 'map_max_8views': a(m8.amax(dim=(1, 2, 3)))}
    for k in (3, 5):
        res[f'map_box{k}_max_1view'] = a(F.avg_pool2d(m1, k, 1, k // 2).amax(dim=(1, 2, 3)))
    for k in (4, 16, 64):
        res[f'map_top{k}_mean_1view'] = a(m1.flatten(1).topk(k, dim=1).values.mean(1))
    for w in (0.25, 0.5, 0.75):
        res[f'head_map_mix{w}_1view'] = a((1 - w) * s1 + w * mmax)
    print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
