/**
 * Preprocessing compiled from the manifest into the ONNX graph.
 *
 * The deployed session takes the raw camera frame as `frame` uint8
 * [1,1,H,W] (GRAY8) and produces the model's outputs unchanged:
 *
 *   frame ─Cast(float)─► AveragePool(k=s=factor) | Resize(linear) ─► Mul(scale/std) ─► Add(-mean/std) ─► <model input> ─► model
 *   letterbox: ... ─► Add(-mean/std) ─► x ─► Sub(x, m) ─► Pad(0) ─► Add(m) ─► <model input>, m = GlobalAveragePool(x)
 *
 * - `area` with integer factors (1280x1024 → 320x256: 4x4) is an exact box
 *   average: AveragePool with kernel = stride = factor.
 * - `linear`, or `area` with non-integer factors / upscaling (noted in the
 *   plan), is a bilinear Resize with half_pixel coordinates and no
 *   antialiasing (= OpenCV INTER_LINEAR, torch interpolate(align_corners=False)).
 * - `letterbox` keeps the aspect ratio: s = min(W/w, H/h) (model W x H, frame
 *   w x h), a bilinear Resize (as `linear`) to round(w·s) x round(h·s) (half
 *   up, clamped to 1..W/H), centred (the left/top pad is the smaller half) and
 *   padded to W x H with the resized image's mean (after normalisation). The
 *   trainer (models/training/folder_dataset.py `letterbox_geometry`) uses the
 *   same rule; `letterboxGeometry` below is the one place it lives here.
 * - Normalisation (x*scale - mean)/std is folded into one Mul + one Add,
 *   applied after resizing (both resizes are weighted averages with weights
 *   summing to 1, so the order does not change the result beyond rounding,
 *   and it runs on 16x fewer pixels).
 *
 * The model's opset is never changed: the nodes added here use signatures that
 * are valid from opset 11 (Resize) / 7 (AveragePool) up to the current one.
 * The model's input keeps its name as an internal value, so every consumer in
 * the model stays wired.
 */
import {
  FrameShapeMismatchError, ModelContractMismatchError, ModelMalformedError,
} from '../core/errors.js';
import type { Manifest } from './manifest-schema.js';
import {
  GraphBuilder, attr, type AttrValue, collectNames, decodeModel, describeValueInfo, encodeModel, formatDescription,
  graphInputs, makeValueInfo, onnx, opsetVersion, renameValue, type ModelProto,
} from './onnx-graph.js';

/** Name of the deployed session's input. */
export const FRAME_INPUT_NAME = 'frame';

export interface FrameGeometry {
  width: number;
  height: number;
}

export type ResizePlan =
  | { kind: 'none' }
  | { kind: 'area'; factorX: number; factorY: number }
  | { kind: 'linear' }
  | { kind: 'letterbox'; resizedWidth: number; resizedHeight: number; top: number; left: number };

/** The letterbox geometry of a frame in a model input (see the header): resized size and top/left padding. */
export function letterboxGeometry(frame: FrameGeometry, width: number, height: number):
  { resizedWidth: number; resizedHeight: number; top: number; left: number; scale: number } {
  const scale = Math.min(width / frame.width, height / frame.height);
  const resizedWidth = Math.min(width, Math.max(1, Math.floor(frame.width * scale + 0.5)));
  const resizedHeight = Math.min(height, Math.max(1, Math.floor(frame.height * scale + 0.5)));
  return { resizedWidth, resizedHeight, top: Math.floor((height - resizedHeight) / 2), left: Math.floor((width - resizedWidth) / 2), scale };
}

export interface PreprocessPlan {
  frame: FrameGeometry;
  /** model input geometry (N=1) */
  channels: number;
  height: number;
  width: number;
  resize: ResizePlan;
  /** per channel: y = resized * mul[c] + add[c]  (mul = scale/std, add = -mean/std) */
  mul: number[];
  add: number[];
  /** things worth a log line (e.g. area → linear fallback) */
  notes: string[];
  /** opset the added nodes need at least */
  minOpset: number;
}

function perChannel(values: readonly number[], channels: number, what: string): number[] {
  if (values.length === channels) return [...values];
  if (values.length === 1) return new Array<number>(channels).fill(values[0]!);
  throw new ModelContractMismatchError(
    `normalisation.${what} has ${values.length} values; the input has ${channels} channel(s)`);
}

/** Work out the preprocessing for a manifest and a frame geometry (pure, throws coded errors). */
export function planPreprocessing(manifest: Manifest, frame: FrameGeometry): PreprocessPlan {
  const { input } = manifest;
  const [, channels, height, width] = input.shape;
  if (!Number.isInteger(frame.width) || !Number.isInteger(frame.height) || frame.width < 1 || frame.height < 1) {
    throw new FrameShapeMismatchError(`frame geometry ${frame.width}x${frame.height} is not a positive integer size`);
  }
  if (input.colour === 'rgb') {
    throw new FrameShapeMismatchError(
      `model '${manifest.name}' expects rgb input (${channels} channels) but the camera delivers GRAY8 frames`);
  }
  if (channels !== 1) {
    throw new ModelContractMismatchError(`input colour is gray but input.shape has ${channels} channels`);
  }
  const notes: string[] = [];
  let resize: ResizePlan;
  if (frame.width === width && frame.height === height) {
    resize = { kind: 'none' };
  } else if (input.resize === 'letterbox') {
    const { resizedWidth, resizedHeight, top, left } = letterboxGeometry(frame, width, height);
    resize = { kind: 'letterbox', resizedWidth, resizedHeight, top, left };
  } else if (input.resize === 'area' && frame.width % width === 0 && frame.height % height === 0) {
    resize = { kind: 'area', factorX: frame.width / width, factorY: frame.height / height };
    if (resize.factorX !== resize.factorY) {
      notes.push(`area resize with unequal factors ${resize.factorX}x${resize.factorY}: the aspect ratio changes`);
    }
  } else {
    if (input.resize === 'area') {
      notes.push(`area resize ${frame.width}x${frame.height} → ${width}x${height} has non-integer factors: `
        + 'using bilinear Resize instead (results differ from a true area resize)');
    }
    resize = { kind: 'linear' };
  }
  const { scale, mean, std } = input.normalisation;
  const m = perChannel(mean, channels, 'mean');
  const s = perChannel(std, channels, 'std');
  return {
    frame: { width: frame.width, height: frame.height }, channels, height, width, resize,
    mul: s.map((sd) => scale / sd),
    add: s.map((sd, c) => -m[c]! / sd),
    notes,
    minOpset: resize.kind === 'linear' || resize.kind === 'letterbox' ? 11 : 7,
  };
}

export interface CompileResult {
  model: ModelProto;
  bytes: Uint8Array;
  plan: PreprocessPlan;
}

/**
 * Prepend the manifest's preprocessing to a decoded model (mutates `model`).
 * `inputName` is the deployed session's input (default `frame`).
 */
export function compileDeployedGraph(model: ModelProto, manifest: Manifest, frame: FrameGeometry,
  inputName = FRAME_INPUT_NAME): CompileResult {
  const plan = planPreprocessing(manifest, frame);
  const graph = model.graph;
  if (!graph) throw new ModelContractMismatchError('model has no graph');
  const want = manifest.input.name;

  const inputs = graphInputs(graph);
  if (inputs.length !== 1 || inputs[0]!.name !== want) {
    throw new ModelContractMismatchError(`expected exactly one graph input '${want}', found `
      + `[${inputs.map((i) => formatDescription(describeValueInfo(i))).join('; ')}]`);
  }
  const modelInput = inputs[0]!;
  const desc = describeValueInfo(modelInput);
  const wantShape = [1, plan.channels, plan.height, plan.width];
  if (desc.dtype !== 'float32' || desc.shape === null || desc.shape.length !== 4
    || desc.shape.some((d, i) => typeof d === 'number' && d !== wantShape[i])) {
    throw new ModelContractMismatchError(`graph input ${formatDescription(desc)} cannot take the preprocessed `
      + `frame float32 [${wantShape.join(',')}]`);
  }

  // Opset: never change the model's; refuse one too old for the nodes we add.
  let opset = opsetVersion(model);
  if (opset === undefined) {
    model.opsetImport = [...(model.opsetImport ?? []), { domain: '', version: 13 }];
    opset = 13;
  }
  if (opset < plan.minOpset) {
    throw new ModelContractMismatchError(`model opset ${opset} is too old for the preprocessing `
      + `(${plan.resize.kind} resize needs opset >= ${plan.minOpset}); re-export the model at opset 13`);
  }

  // Free the deployed input name if the model uses it for anything.
  const names = collectNames(graph);
  let target = want;
  if (names.has(inputName)) {
    const fresh = new GraphBuilder('tmp', names).uniqueName(`${inputName}_model`);
    renameValue(graph, inputName, fresh);
    names.add(fresh);
    if (target === inputName) target = fresh;
  }
  names.add(inputName);

  const g = new GraphBuilder('preprocess', names);
  const frameShape = [1, 1, frame.height, frame.width];
  // Each step consumes the running value plus its constants; the last one writes the model's input.
  const steps: Array<{ op: string; consts: string[]; attrs: Record<string, AttrValue> }> = [];
  steps.push({ op: 'Cast', consts: [], attrs: { to: attr.int(onnx.TensorProto.DataType.FLOAT) } });
  if (plan.resize.kind === 'area') {
    const k = [plan.resize.factorY, plan.resize.factorX];
    steps.push({ op: 'AveragePool', consts: [], attrs: { kernel_shape: attr.ints(k), strides: attr.ints(k) } });
  } else if (plan.resize.kind === 'linear' || plan.resize.kind === 'letterbox') {
    const [rh, rw] = plan.resize.kind === 'letterbox'
      ? [plan.resize.resizedHeight, plan.resize.resizedWidth] : [plan.height, plan.width];
    // Empty roi/scales tensors + sizes: valid for Resize-11 (inputs required) and 13+ (optional).
    if (rh !== frame.height || rw !== frame.width) {
      steps.push({
        op: 'Resize',
        consts: [g.constF32('preprocess_roi', [0], []), g.constF32('preprocess_scales', [0], []),
          g.constI64('preprocess_sizes', [4], [1, plan.channels, rh, rw])],
        attrs: { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('half_pixel') },
      });
    }
  }
  const cShape = [1, plan.channels, 1, 1];
  if (plan.mul.some((v) => v !== 1)) steps.push({ op: 'Mul', consts: [g.constF32('preprocess_mul', cShape, plan.mul)], attrs: {} });
  if (plan.add.some((v) => v !== 0)) steps.push({ op: 'Add', consts: [g.constF32('preprocess_add', cShape, plan.add)], attrs: {} });
  const lb = plan.resize.kind === 'letterbox' ? plan.resize : null;
  const padded = lb !== null && (lb.resizedHeight !== plan.height || lb.resizedWidth !== plan.width);

  let x = inputName;
  steps.forEach((step, i) => {
    const out = i === steps.length - 1 && !padded ? target : g.uniqueName(`preprocess_${step.op.toLowerCase()}`);
    g.node(step.op, [x, ...step.consts], [out], step.attrs, { name: g.uniqueName(`preprocess/${step.op}`) });
    x = out;
  });
  if (padded) {
    // pad with the image mean: m = GlobalAveragePool(x); Pad(x - m, 0) + m (Pad-11+ signature: data, pads)
    const bottom = plan.height - lb.resizedHeight - lb.top;
    const right = plan.width - lb.resizedWidth - lb.left;
    const mean = g.uniqueName('preprocess_mean');
    const centred = g.uniqueName('preprocess_centred');
    const pad = g.uniqueName('preprocess_pad');
    g.node('GlobalAveragePool', [x], [mean], {}, { name: g.uniqueName('preprocess/GlobalAveragePool') });
    g.node('Sub', [x, mean], [centred], {}, { name: g.uniqueName('preprocess/Sub') });
    g.node('Pad', [centred, g.constI64('preprocess_pads', [8], [0, 0, lb.top, lb.left, 0, 0, bottom, right])], [pad],
      { mode: attr.string('constant') }, { name: g.uniqueName('preprocess/Pad') });
    g.node('Add', [pad, mean], [target], {}, { name: g.uniqueName('preprocess/Add') });
  }

  // Rewire: frame becomes the graph input; the model input becomes an internal value.
  graph.input = [makeValueInfo(inputName, 'uint8', frameShape),
    ...(graph.input ?? []).filter((vi) => vi !== modelInput)];
  modelInput.name = target;
  graph.valueInfo = [modelInput, ...(graph.valueInfo ?? [])];
  graph.node = [...g.nodes, ...(graph.node ?? [])];
  graph.initializer = [...(graph.initializer ?? []), ...g.initializers];
  model.metadataProps = [...(model.metadataProps ?? []).filter((p) => p.key !== 'inspector.preprocess'),
    { key: 'inspector.preprocess', value: JSON.stringify({ ...plan, manifest: `${manifest.name}@${manifest.version}` }) }];

  return { model, bytes: encodeModel(model), plan };
}

/**
 * Compile the deployed model: raw camera frame in (`frame` uint8 [1,1,H,W]),
 * the model's outputs out. Throws FrameShapeMismatchError /
 * ModelContractMismatchError (and ModelMalformedError for undecodable bytes).
 */
export function compileDeployedModel(modelBytes: Uint8Array, manifest: Manifest, frame: FrameGeometry): Uint8Array {
  let model: ModelProto;
  try {
    model = decodeModel(modelBytes);
  } catch (err) {
    throw new ModelMalformedError('model.onnx', (err as Error).message);
  }
  return compileDeployedGraph(model, manifest, frame).bytes;
}
