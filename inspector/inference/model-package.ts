/**
 * Model packages: a folder with `model.onnx` and `manifest.json`, checked for
 * completeness BEFORE anything loads it into a runtime. Each failure has its
 * own coded error, raised in this order:
 *
 *   folder / model.onnx / manifest.json missing  → INSPECTOR_MODEL_PACKAGE_MISSING
 *   manifest not JSON, or not a Manifest          → INSPECTOR_MODEL_MANIFEST_INVALID (first errors, with paths)
 *   sha256(model.onnx) ≠ manifest.sha256           → INSPECTOR_MODEL_HASH_MISMATCH
 *   model.onnx not an ONNX protobuf with a graph  → INSPECTOR_MODEL_MALFORMED
 *   an extra file (`files`) missing              → INSPECTOR_MODEL_PACKAGE_MISSING
 *   sha256 of an extra file ≠ manifest.sha256s     → INSPECTOR_MODEL_HASH_MISMATCH
 *   graph inputs/outputs ≠ manifest (names, dtype, static shapes) → INSPECTOR_MODEL_CONTRACT_MISMATCH
 *   no configured provider can run the graph's ops → INSPECTOR_MODEL_UNSUPPORTED_OP (when `providers` is given)
 *
 * A model whose warm-up output is NaN/inf is refused later, by the inference
 * worker (INSPECTOR_MODEL_OUTPUT_INVALID): that needs a session.
 *
 * The contract is checked twice: on the decoded proto here, and on the
 * session's inputMetadata/outputMetadata once a session exists
 * (`checkSessionContract`, which sees what the runtime really built).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { InferenceSession } from 'onnxruntime-node';
import {
  ModelContractMismatchError, ModelHashMismatchError, ModelMalformedError, ModelManifestInvalidError,
  ModelPackageMissingError,
} from '../core/errors.js';
import { MANIFEST_SCHEMAS, type Manifest } from './manifest-schema.js';
import { providersForModel } from './provider-ops.js';
import type { ProviderFallback, ProviderName } from './providers.js';
import {
  decodeModel, describeValueInfo, formatDescription, graphInputs, opsetVersion, type Dim, type ModelProto,
} from './onnx-graph.js';

export const MODEL_FILE = 'model.onnx';
export const MANIFEST_FILE = 'manifest.json';
/** How many schema errors a ModelManifestInvalidError lists. */
const MAX_LISTED_ERRORS = 5;

export interface ModelPackage {
  /** absolute folder */
  dir: string;
  manifest: Manifest;
  modelBytes: Uint8Array;
  /** sha256 of model.onnx, hex (equal to manifest.sha256) */
  sha256: string;
  /** the decoded graph (already checked against the manifest) */
  model: ModelProto;
  /** the configured providers that can run the graph's ops (all of them when no list was given) */
  providers: ProviderName[] | null;
  /** providers of the list skipped because the graph uses an op they lack */
  opSkips: ProviderFallback[];
}

export interface LoadPackageOptions {
  /** provider preference list: refuse (INSPECTOR_MODEL_UNSUPPORTED_OP) when none can run the graph */
  providers?: readonly ProviderName[];
}

async function isFile(path: string): Promise<boolean | null> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return null;
  }
}

function schemaErrors(schema: (typeof MANIFEST_SCHEMAS)[1 | 2], value: unknown): string[] {
  const out: string[] = [];
  for (const e of Value.Errors(schema, value)) {
    out.push(`${e.path || '/'}: ${e.message}`);
    if (out.length >= MAX_LISTED_ERRORS) break;
  }
  return out;
}

/** Schema + cross-field checks; returns problems as "path: message" lines. */
export function manifestProblems(value: unknown): string[] {
  const version = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== 1 && version !== 2) {
    return [`/schemaVersion: ${JSON.stringify(version)} is not a supported manifest schema version (1, 2)`];
  }
  const schema = MANIFEST_SCHEMAS[version];
  if (!Value.Check(schema, value)) return schemaErrors(schema, value);
  const m = value as Manifest;
  const problems: string[] = [];
  const channels = m.input.shape[1];
  for (const k of ['mean', 'std'] as const) {
    const n = m.input.normalisation[k].length;
    if (n !== 1 && n !== channels) problems.push(`/input/normalisation/${k}: ${n} values for ${channels} channel(s)`);
  }
  if (m.input.colour === 'gray' && channels !== 1) problems.push(`/input/shape/1: colour gray needs 1 channel, not ${channels}`);
  const o = m.outputs;
  const k = o.classes.length;
  if (o.kind === 'classification') {
    if (o.map) problems.push('/outputs/map: a classification model has no map output');
    if (!o.probabilities) problems.push('/outputs/probabilities: a classification model needs a probabilities output [1,K]');
  } else if (!o.map) {
    problems.push(`/outputs/map: kind ${o.kind} needs a map output`);
  }
  if (o.map) {
    const s = o.map.shape;
    if (s.length < 2) problems.push('/outputs/map/shape: needs at least 2 dims (…, H, W)');
    if (o.kind === 'anomaly_map' && s.length === 4 && s[1] !== 1) problems.push(`/outputs/map/shape/1: an anomaly map has 1 channel, not ${s[1]}`);
    if (o.kind === 'segmentation' && (s.length !== 4 || (s[1] !== 1 && s[1] !== k))) {
      problems.push(`/outputs/map/shape: a segmentation map is [1,1,h,w] or [1,${k},h,w] (one channel per class), not [${s.join(',')}]`);
    }
  }
  if (o.probabilities) {
    const s = o.probabilities.shape;
    if (s[s.length - 1] !== k) problems.push(`/outputs/probabilities/shape: last dim ${s[s.length - 1]} ≠ ${k} classes`);
  }
  const names = [o.score.name, o.map?.name, o.probabilities?.name].filter((x): x is string => x !== undefined);
  if (new Set(names).size !== names.length) problems.push(`/outputs: output names repeat (${names.join(', ')})`);
  if (new Set(o.classes).size !== k) problems.push('/outputs/classes: class names repeat');
  for (const c of o.defectClasses) {
    if (!o.classes.includes(c)) problems.push(`/outputs/defectClasses: '${c}' is not in classes`);
  }
  for (const c of Object.keys(m.decision.classThresholds ?? {})) {
    if (!o.classes.includes(c)) problems.push(`/decision/classThresholds: '${c}' is not in classes`);
    else if (!o.defectClasses.includes(c)) problems.push(`/decision/classThresholds: '${c}' is not a defect class`);
  }
  const files = m.files ?? [];
  const hashes = m.sha256s ?? {};
  if (new Set(files).size !== files.length) problems.push('/files: a file is listed twice');
  for (const f of files) {
    if (f === MODEL_FILE || f === MANIFEST_FILE) problems.push(`/files: ${f} is part of every package; do not list it`);
    if (!(f in hashes)) problems.push(`/sha256s: no hash for '${f}'`);
  }
  for (const f of Object.keys(hashes)) if (!files.includes(f)) problems.push(`/sha256s: '${f}' is not in files`);
  if (m.registration && !files.includes(m.registration.reference)) {
    problems.push(`/registration/reference: '${m.registration.reference}' is not in files`);
  }
  if (m.registration && m.input.resize === 'letterbox') {
    problems.push('/registration: a registering package stretches the frame onto its reference (input.resize area or linear), not letterbox');
  }
  return problems;
}

/** Parse and validate a manifest's text; throws ModelManifestInvalidError. */
export function parseManifest(text: string, where = MANIFEST_FILE): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelManifestInvalidError(where, `not JSON (${(err as Error).message})`);
  }
  const problems = manifestProblems(json);
  if (problems.length > 0) throw new ModelManifestInvalidError(where, problems.join('; '));
  return json as Manifest;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Decode model bytes and check there is a usable graph; throws ModelMalformedError. */
export function decodeModelFile(bytes: Uint8Array, where = MODEL_FILE): ModelProto {
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new ModelMalformedError(where, `not an ONNX protobuf (${(err as Error).message})`);
  }
  // protobuf accepts many short byte strings as a valid (near-empty) message
  const g = model.graph;
  if (!g) throw new ModelMalformedError(where, 'no graph in the model');
  if ((g.node ?? []).length === 0) throw new ModelMalformedError(where, 'the graph has no nodes');
  if ((g.output ?? []).length === 0) throw new ModelMalformedError(where, 'the graph has no outputs');
  if (opsetVersion(model) === undefined && (model.opsetImport ?? []).length === 0) {
    throw new ModelMalformedError(where, 'the model imports no operator set');
  }
  return model;
}

function sameShape(got: readonly Dim[] | null, want: readonly number[]): boolean {
  return got !== null && got.length === want.length && got.every((d, i) => d === want[i]);
}

const fmt = (s: readonly number[]): string => `[${s.join(',')}]`;

/** The outputs the manifest declares, by role (score always; map and probabilities by kind). */
export function outputRoles(manifest: Manifest): Array<['score' | 'map' | 'probabilities', { name: string; shape: number[] }]> {
  const o = manifest.outputs;
  const roles: Array<['score' | 'map' | 'probabilities', { name: string; shape: number[] }]> = [['score', o.score]];
  if (o.map) roles.push(['map', o.map]);
  if (o.probabilities) roles.push(['probabilities', o.probabilities]);
  return roles;
}

/** Problems between a decoded graph and the manifest (empty when they agree). */
export function graphContractProblems(model: ModelProto, manifest: Manifest): string[] {
  const problems: string[] = [];
  const graph = model.graph!;
  const inputs = graphInputs(graph).map(describeValueInfo);
  const want = manifest.input;
  const input = inputs.find((i) => i.name === want.name);
  if (!input) {
    problems.push(`input '${want.name}' not in graph inputs [${inputs.map((i) => i.name).join(', ')}]`);
  } else {
    if (input.dtype !== want.dtype) problems.push(`input ${formatDescription(input)} is not ${want.dtype}`);
    if (!sameShape(input.shape, want.shape)) {
      problems.push(`input ${formatDescription(input)} does not have the static shape ${fmt(want.shape)}`);
    }
  }
  for (const extra of inputs.filter((i) => i.name !== want.name)) {
    problems.push(`graph has an extra input ${formatDescription(extra)} the appliance cannot feed`);
  }
  const outputs = (graph.output ?? []).map(describeValueInfo);
  for (const [role, spec] of outputRoles(manifest)) {
    const o = outputs.find((x) => x.name === spec.name);
    if (!o) {
      problems.push(`${role} output '${spec.name}' not in graph outputs [${outputs.map((x) => x.name).join(', ')}]`);
      continue;
    }
    if (o.dtype !== 'float32') problems.push(`${role} output ${formatDescription(o)} is not float32`);
    if (!sameShape(o.shape, spec.shape)) {
      problems.push(`${role} output ${formatDescription(o)} does not have the static shape ${fmt(spec.shape)}`);
    }
  }
  return problems;
}

/** Throws ModelContractMismatchError when the decoded graph and the manifest disagree. */
export function checkGraphContract(model: ModelProto, manifest: Manifest): void {
  const problems = graphContractProblems(model, manifest);
  if (problems.length > 0) throw new ModelContractMismatchError(problems.join('; '));
}

export interface ExpectedTensor {
  name: string;
  type: string;
  shape: readonly number[];
}

/**
 * Check a live session's metadata. For the deployed session pass the frame
 * input (`frame` uint8 [1,1,H,W]); outputs default to the manifest's.
 */
export function checkSessionContract(session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>,
  inputs: readonly ExpectedTensor[], manifest: Manifest): void {
  const outputs: ExpectedTensor[] = outputRoles(manifest).map(([, spec]) => ({ name: spec.name, type: 'float32', shape: spec.shape }));
  const problems: string[] = [];
  const check = (kind: string, meta: readonly InferenceSession.ValueMetadata[], want: ExpectedTensor): void => {
    const m = meta.find((x) => x.name === want.name);
    if (!m) {
      problems.push(`session ${kind} '${want.name}' missing (has ${meta.map((x) => x.name).join(', ')})`);
    } else if (!m.isTensor) {
      problems.push(`session ${kind} '${want.name}' is not a tensor`);
    } else if (m.type !== want.type || m.shape.length !== want.shape.length || m.shape.some((d, i) => d !== want.shape[i])) {
      problems.push(`session ${kind} '${want.name}' is ${m.type} [${m.shape.join(',')}], expected ${want.type} ${fmt(want.shape)}`);
    }
  };
  for (const w of inputs) check('input', session.inputMetadata, w);
  if (session.inputMetadata.length !== inputs.length) {
    problems.push(`session has ${session.inputMetadata.length} inputs, expected ${inputs.length}`);
  }
  for (const w of outputs) check('output', session.outputMetadata, w);
  if (problems.length > 0) throw new ModelContractMismatchError(problems.join('; '));
}

/**
 * Load and check a model package. Nothing is handed to a runtime until every
 * check has passed.
 */
export async function loadModelPackage(dir: string, opts: LoadPackageOptions = {}): Promise<ModelPackage> {
  const abs = resolve(dir);
  const folder = await stat(abs).then((s) => s.isDirectory(), () => null);
  if (folder === null) throw new ModelPackageMissingError(`folder ${abs} does not exist`);
  if (!folder) throw new ModelPackageMissingError(`${abs} is not a folder`);
  const modelPath = join(abs, MODEL_FILE);
  const manifestPath = join(abs, MANIFEST_FILE);
  const missing: string[] = [];
  if ((await isFile(modelPath)) !== true) missing.push(MODEL_FILE);
  if ((await isFile(manifestPath)) !== true) missing.push(MANIFEST_FILE);
  if (missing.length > 0) throw new ModelPackageMissingError(`${missing.join(' and ')} missing in ${abs}`);

  const manifest = parseManifest(await readFile(manifestPath, 'utf8'), manifestPath);
  const extra = manifest.files ?? [];
  const absent: string[] = [];
  for (const f of extra) if ((await isFile(join(abs, f))) !== true) absent.push(f);
  if (absent.length > 0) throw new ModelPackageMissingError(`${absent.join(', ')} listed in the manifest but missing in ${abs}`);

  const bytes = await readFile(modelPath);
  const modelBytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sha256 = sha256Hex(modelBytes);
  if (sha256 !== manifest.sha256) throw new ModelHashMismatchError(modelPath, sha256, manifest.sha256);
  for (const f of extra) {
    const got = sha256Hex(await readFile(join(abs, f)));
    const want = manifest.sha256s![f]!;
    if (got !== want) throw new ModelHashMismatchError(join(abs, f), got, want);
  }

  const model = decodeModelFile(modelBytes, modelPath);
  checkGraphContract(model, manifest);
  const { usable, skipped } = opts.providers ? providersForModel(model, opts.providers) : { usable: null, skipped: [] };
  return { dir: abs, manifest, modelBytes, sha256, model, providers: usable, opSkips: skipped };
}
