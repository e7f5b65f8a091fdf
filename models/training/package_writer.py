"""Writing the model package of train_folder.py: model.onnx (the Exported module, checked against the graph contract)
and manifest.json (schema 2, outputs.kind segmentation, with the exact command, image counts and metrics)."""
import os
import sys

import numpy as np
import torch

from folder_dataset import CELL, MEAN, SCALE, STD
from segmenter import Exported
from training_common import dumps_compact, sha256_file


def export_onnx(net, tta, example, model_path, size):
    """Export Exported(net, tta) as model_path (opset 13) and check its inputs/outputs; -> the onnx module."""
    exported = Exported(net, tta).eval()
    s, cells = size, size // CELL
    torch.onnx.export(exported, (example,), model_path, input_names=['image'], output_names=['map', 'score'],
                      opset_version=13, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    import onnx
    model = onnx.load(model_path)
    onnx.checker.check_model(model)
    io = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in list(model.graph.input) + list(model.graph.output)}
    expected = {'image': [1, 1, s, s], 'map': [1, 1, cells, cells], 'score': [1]}
    if io != expected:
        sys.exit(f'exported graph has {io}, expected {expected}')
    return onnx


def training_command(args):
    """The command line that remakes the package (options at their defaults left out)."""
    return (f'/usr/bin/python3 models/training/train_folder.py --data {args.data}'
            + (f' --test-data {args.test_data}' if args.test_data else '')
            + f' --out {args.out} --name {args.name} --version {args.version} --size {args.size} --widths {args.widths}'
            f' --epochs {args.epochs} --batch {args.batch} --lr {args.lr} --seed {args.seed} --threads {args.threads}'
            f' --threshold {args.threshold} --seg-weight {args.seg_weight}'
            + (f' --resize {args.resize}' if args.resize != 'linear' else '')
            + (f' --crop-size {args.crop_size}' if args.crop_size else '')
            + (f' --zoom {args.zoom}' if args.zoom else '')
            + (' --rot90' if args.rot90 else '') + (f' --paste {args.paste}' if args.paste else '') + (f' --paste-move {args.paste_move}' if args.paste_move else '')
            + (' --balance-paste' if args.balance_paste else '')
            + (' --no-standardise' if args.no_standardise else '')
            + (f' --crop {args.crop}' if args.crop else '') + (f' --dropout {args.dropout}' if args.dropout else '')
            + (f' --weight-decay {args.weight_decay}' if args.weight_decay != 1e-4 else '')
            + (f' --contrast {args.contrast}' if args.contrast else '') + (f' --ema {args.ema}' if args.ema else '')
            + (f' --tta {args.tta}' if args.tta > 1 else '')
            + (f' --val-fraction {args.val_fraction}' if args.val_fraction else '')
            + (' --keep-best' if args.keep_best else '')
            + (f' --save-state {args.save_state}' if args.save_state else '')
            + (f' --ensemble {args.ensemble}' if args.ensemble else '')
            + (f' --teacher {args.teacher} --teacher-views {args.teacher_views} --teacher-weight {args.teacher_weight}' if args.teacher else '')
            + (f' --max-images {args.max_images}' if args.max_images else ''))


def write_package(args, net, example, n_params, y, classes, val, test, split_metrics, t_train):
    """Write model.onnx and manifest.json into args.out. split_metrics = (train, validation, test) metric dicts."""
    train_m, val_m, test_m = split_metrics
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, 'model.onnx')
    onnx = export_onnx(net, args.tta, example, model_path, args.size)
    s, cells = args.size, args.size // CELL

    r = lambda v: round(float(v), 6)
    command = training_command(args)
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
