/**
 * Teach a model from good parts: align each good image to a reference
 * (calibration/registration.ts), learn a per-pixel reference and tolerance
 * (variation-model.ts), write the result as an ONNX anomaly_map package
 * (variation-graph.ts) with `reference.png`, then put the package through the
 * same validation gate as any other model (loadModelPackage) and score the
 * teaching images with onnxruntime as a self-check.
 *
 *   const { packageDir, manifest } = await teachPackage({
 *     good: images, outDir: 'models/bracket-taught/1.0.0', name: 'bracket-taught', version: '1.0.0',
 *     downscale: 4, trainingData: 'test-images/train (good parts)' });
 *
 * Works from one golden image (tolerance from local edge strength) or many
 * (tolerance from the per-pixel spread). The images are full camera frames;
 * `downscale` (integer, default 4) sets the model input (frame / downscale,
 * box-averaged exactly as the station's `area` resize does).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { resizeGray } from './frame-registration.js';
import { encodeGrayPng, type GrayImage } from '../core/gray-image.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { createRegistrar, type RegistrationResult } from '../../calibration/registration.js';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../inference/manifest-schema.js';
import { MANIFEST_FILE, MODEL_FILE, loadModelPackage, sha256Hex } from '../inference/model-package.js';
import type { CameraModel } from '../../calibration/camera-model.js';
import { buildUndistortLut, remapU8 } from '../../calibration/undistort-map.js';
import { TeachImageSizeError, TeachNoImagesError, TeachOptionsInvalidError } from './errors.js';
import { DEFAULT_VARIATION, learnVariation, type VariationParams } from './variation-model.js';
import { MAP_OUTPUT, SCORE_OUTPUT, buildVariationGraph } from './variation-graph.js';
import { chooseTeachOptions, type ImageProfile } from './auto-options.js';

export const REFERENCE_FILE = 'reference.png';
const NORM = { scale: 1 / 255, mean: 0.5, std: 0.25 } as const;

export interface TeachRegistrationOptions {
  maxShiftPx?: number;
  maxRotationDeg?: number;
  minQuality?: number;
}

export interface TeachOptions {
  /** good images, all the same size (full frames) */
  good: GrayImage[];
  /** the package folder to write (created; files in it are overwritten) */
  outDir: string;
  name: string;
  version: string;
  /** integer frame → model input factor (default 4) */
  downscale?: number;
  /** where the good images came from (manifest training.data) */
  trainingData: string;
  /** the command that remakes the package (manifest training.command) */
  command?: string;
  log?: Logger;
  /**
   * The station's lens calibration (full-frame pixels). Each downscaled image is undistorted through
   * the same table the station's registration path uses, so the taught reference has the geometry the
   * station's undistorted frames have. Teach with the lens the station runs with, or without one on a
   * station with none.
   */
  lens?: CameraModel | null;
  /** register every frame to the reference (default true); false: images are taken as aligned */
  registration?: boolean | TeachRegistrationOptions;
  /** variation-model parameters (tolerance) */
  variation?: Partial<VariationParams>;
  /** smoothing kernel of the excess, odd (default 1 from many images, 3 from one) */
  smoothPx?: number;
  /** smoothed excess (grey levels) that scores 0.5 (default 5) */
  halfLevel?: number;
  /** map cell size in model-input pixels (default 4: a 320x256 input gives an 80x64 map) */
  mapPool?: number;
  /** local alignment in the graph: every frame shift within ±localShiftPx is tried per block (default 0 = off) */
  localShiftPx?: number;
  /** block size of the local alignment, model-input pixels, even, dividing the input (default 32) */
  localShiftBlockPx?: number;
  /** morphological opening of the excess by a k×k square, k pixels (default 0 = off; 2 removes 1-px-wide slivers, 3 up to 2 px) */
  openSizePx?: number;
  /** manifest decision.minDefectAreaPx: map regions smaller than this (frame pixels) are no defect regions (default 0) */
  minDefectAreaPx?: number;
  description?: string;
  /**
   * Choose every option not given here from the good images (auto-options.ts: binarised or grey,
   * contrast, noise, feature width, a registration self-test); default false: the fixed defaults.
   * `inspector teach` and eval's per-pair teach turn it on. What was chosen, and how, is written to
   * the manifest's `training.teach`.
   */
  auto?: boolean;
  /** progress per image: registration (each pass), then the self-check (the CLI's progress line, core/progress.ts) */
  onProgress?: (done: number, total: number, phase: TeachPhase) => void;
}

export type TeachPhase = 'register' | 'self-check';

export interface TeachResult {
  packageDir: string;
  manifest: Manifest;
  /** teaching images that could not be registered (left out) */
  skipped: Array<{ index: number; reason: string }>;
  /** scores of the (aligned) teaching images under the taught model */
  teachScores: number[];
}

/** Box-average a frame by an integer factor (what OpenCV INTER_AREA gives for integer factors; plain JS). */
export function downscaleImage(img: GrayImage, factor: number): GrayImage {
  if (factor === 1) return { width: img.width, height: img.height, data: new Uint8Array(img.data) };
  const w = img.width / factor;
  const h = img.height / factor;
  const data = new Uint8Array(w * h);
  resizeGray(img.data, img.width, img.height, data, w, h, true);
  return { width: w, height: h, data };
}

function checkOptions(o: TeachOptions): { downscale: number; width: number; height: number } {
  if (o.good.length === 0) throw new TeachNoImagesError('the list of good images is empty');
  const { width, height } = o.good[0]!;
  const downscale = o.downscale ?? 4;
  if (!Number.isInteger(downscale) || downscale < 1) throw new TeachOptionsInvalidError(`downscale ${downscale} is not a positive integer`);
  for (const [i, g] of o.good.entries()) {
    if (g.width !== width || g.height !== height || g.data.length !== width * height) {
      throw new TeachImageSizeError(`image ${i} is ${g.width}x${g.height}, image 0 is ${width}x${height}`);
    }
  }
  if (width % downscale !== 0 || height % downscale !== 0) {
    throw new TeachImageSizeError(`${width}x${height} is not divisible by downscale ${downscale}`);
  }
  if (width / downscale < 8 || height / downscale < 8) throw new TeachImageSizeError(`model input ${width / downscale}x${height / downscale} is below 8x8`);
  const mapPool = o.mapPool ?? 4;
  if (!Number.isInteger(mapPool) || mapPool < 1 || (width / downscale) % mapPool !== 0 || (height / downscale) % mapPool !== 0) {
    throw new TeachOptionsInvalidError(`mapPool ${mapPool} must be a positive integer dividing ${width / downscale}x${height / downscale}`);
  }
  const smooth = o.smoothPx ?? 1;
  if (!Number.isInteger(smooth) || smooth < 1 || smooth % 2 !== 1) throw new TeachOptionsInvalidError(`smoothPx ${smooth} must be odd`);
  const shift = o.localShiftPx ?? 0;
  const block = o.localShiftBlockPx ?? 32;
  if (!Number.isInteger(shift) || shift < 0 || shift > 8) throw new TeachOptionsInvalidError(`localShiftPx ${shift} must be an integer in 0..8`);
  if (shift > 0 && (!Number.isInteger(block) || block < 2 || block % 2 !== 0 || (width / downscale) % block !== 0 || (height / downscale) % block !== 0)) {
    throw new TeachOptionsInvalidError(`localShiftBlockPx ${block} must be even and divide ${width / downscale}x${height / downscale}`);
  }
  const open = o.openSizePx ?? 0;
  if (!Number.isInteger(open) || open < 0 || open > 9) throw new TeachOptionsInvalidError(`openSizePx ${open} must be an integer in 0..9`);
  const minArea = o.minDefectAreaPx ?? 0;
  if (!(minArea >= 0) || !Number.isFinite(minArea)) throw new TeachOptionsInvalidError(`minDefectAreaPx ${minArea} must be >= 0`);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(o.name)) throw new TeachOptionsInvalidError(`name '${o.name}' must match ^[a-z0-9][a-z0-9_-]*$`);
  if (!/^\d+\.\d+\.\d+$/.test(o.version)) throw new TeachOptionsInvalidError(`version '${o.version}' is not MAJOR.MINOR.PATCH`);
  return { downscale, width: width / downscale, height: height / downscale };
}

/** Align images to a reference; failures are left out and reported. */
function alignAll(images: GrayImage[], reference: GrayImage, reg: Required<TeachRegistrationOptions>,
  onImage?: (done: number, total: number) => void):
  { aligned: Uint8Array[]; skipped: Array<{ index: number; reason: string }>; results: RegistrationResult[] } {
  const registrar = createRegistrar(reference, reg);
  const aligned: Uint8Array[] = [];
  const skipped: Array<{ index: number; reason: string }> = [];
  const results: RegistrationResult[] = [];
  images.forEach((img, index) => {
    const r = registrar.register(img);
    results.push(r);
    if (!r.ok) {
      skipped.push({ index, reason: r.reason ?? 'not registrable' });
    } else {
      const out = new Uint8Array(img.data.length);
      registrar.warp(img, r, out);
      aligned.push(out);
    }
    onImage?.(index + 1, images.length);
  });
  return { aligned, skipped, results };
}

/** The option keys written to `training.teach.options` (and accepted as `--options` / `--teach-options`). */
const TUNABLE_KEYS = ['downscale', 'registration', 'smoothPx', 'halfLevel', 'mapPool', 'localShiftPx', 'localShiftBlockPx',
  'openSizePx', 'minDefectAreaPx'] as const;

export async function teachPackage(given: TeachOptions): Promise<TeachResult> {
  const log = (given.log ?? rootLogger).child({ mod: 'teach' });
  let o = given;
  let how: Record<string, string> = {};
  let profile: ImageProfile | null = null;
  if (given.auto) {
    if (given.good.length === 0) throw new TeachNoImagesError('the list of good images is empty');
    const chosen = chooseTeachOptions(given.good, given);
    const c = chosen.options;
    o = {
      ...given, downscale: c.downscale, variation: c.variation, smoothPx: c.smoothPx, halfLevel: c.halfLevel, mapPool: c.mapPool,
      localShiftPx: c.localShiftPx, localShiftBlockPx: c.localShiftBlockPx, openSizePx: c.openSizePx, minDefectAreaPx: c.minDefectAreaPx,
      registration: given.registration ?? c.registration,
    };
    how = chosen.how;
    profile = chosen.profile;
    log.debug({ how }, 'teach options chosen from the good images');
  } else {
    for (const k of TUNABLE_KEYS) how[k] = given[k] !== undefined ? 'given' : 'default';
    for (const k of Object.keys(DEFAULT_VARIATION)) how[`variation.${k}`] = given.variation?.[k as keyof VariationParams] !== undefined ? 'given' : 'default';
  }
  const { downscale, width, height } = checkOptions(o);
  let small = o.good.map((g) => downscaleImage(g, downscale));
  if (o.lens) {
    const lut = buildUndistortLut(o.lens, { width: o.good[0]!.width, height: o.good[0]!.height }, downscale, downscale);
    small = small.map((s) => { const data = new Uint8Array(s.data.length); remapU8(s.data, lut, data); return { width, height, data }; });
  }
  const params: VariationParams = { ...DEFAULT_VARIATION, ...o.variation };
  const regOpts = o.registration === false ? null : {
    maxShiftPx: Math.round(0.1 * Math.min(width, height)), maxRotationDeg: 6, minQuality: 0.7,
    ...(typeof o.registration === 'object' ? o.registration : {}),
  };

  let reference = small[0]!;
  let aligned = small.map((s) => s.data);
  let skipped: Array<{ index: number; reason: string }> = [];
  if (regOpts) {
    // pass 1 against the first image; pass 2 against the mean of pass 1 (less noise, centred)
    const onImage = o.onProgress ? (d: number, t: number): void => o.onProgress!(d, t, 'register') : undefined;
    let pass = alignAll(small, reference, regOpts, onImage);
    if (small.length > 1 && pass.aligned.length > 1) {
      const meanImg = learnVariation(pass.aligned, width, height, params).mean;
      reference = { width, height, data: Uint8Array.from(meanImg, (v) => Math.round(v)) };
      pass = alignAll(small, reference, regOpts, onImage);
    }
    aligned = pass.aligned;
    skipped = pass.skipped;
    for (const s of skipped) log.warn({ image: s.index, reason: s.reason }, 'good image left out: not registrable');
    if (aligned.length === 0) throw new TeachNoImagesError(`none of ${small.length} good image(s) could be registered`);
  }

  const model = learnVariation(aligned, width, height, params);
  if (!regOpts && small.length > 1) reference = { width, height, data: Uint8Array.from(model.mean, (v) => Math.round(v)) };
  const smoothPx = o.smoothPx ?? (aligned.length === 1 ? 3 : 1);
  const halfLevel = o.halfLevel ?? 5;
  const mapPool = o.mapPool ?? 4;
  const localShiftPx = o.localShiftPx ?? 0;
  const localShiftBlockPx = o.localShiftBlockPx ?? 32;
  const openSizePx = o.openSizePx ?? 0;
  const { bytes, mapShape } = buildVariationGraph(model, {
    inputName: 'image', scale: NORM.scale, normMean: NORM.mean, normStd: NORM.std, smoothPx, halfLevel, mapPool,
    localShiftPx, localShiftBlockPx, openSizePx,
  });

  // self-check: score the aligned teaching images with the package's own graph
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const teachScores: number[] = [];
  const x = new Float32Array(width * height);
  for (const img of aligned) {
    for (let i = 0; i < x.length; i++) x[i] = (img[i]! * NORM.scale - NORM.mean) / NORM.std;
    const out = await session.run({ image: new ort.Tensor('float32', x, [1, 1, height, width]) });
    teachScores.push((out[SCORE_OUTPUT]!.data as Float32Array)[0]!);
    o.onProgress?.(teachScores.length, aligned.length, 'self-check');
  }
  await session.release();

  const dir = resolve(o.outDir);
  await mkdir(dir, { recursive: true });
  const png = await encodeGrayPng(reference);
  const maxTeach = Math.max(...teachScores);
  // extra keys are allowed in training (additionalProperties); the static type lists the required ones
  const training = {
    data: o.trainingData,
    script: 'inspector/teach/teach-package.ts',
    command: o.command ?? '(programmatic: teachPackage())',
    method: 'variation model (per-pixel mean and tolerance), built in TypeScript',
    images: aligned.length,
    skipped: skipped.length,
    downscale,
    undistorted: Boolean(o.lens),
    variation: { ...params, smoothPx, halfLevel, mapPool, localShiftPx, localShiftBlockPx, openSizePx, tolerance: aligned.length === 1 ? 'floor + edge strength' : 'k*std + floor + edge' },
    // the options in force, as `inspector teach --options` / eval `--teach-options` take them, and how each was chosen
    teach: {
      auto: Boolean(o.auto),
      options: {
        downscale, registration: regOpts ?? false, variation: params, smoothPx, halfLevel, mapPool, localShiftPx, localShiftBlockPx,
        openSizePx, minDefectAreaPx: o.minDefectAreaPx ?? 0,
      },
      how,
      ...(profile ? { profile } : {}),
    },
    metrics: { teach_images: aligned.length, teach_max_score: Number(maxTeach.toFixed(6)) },
  } as Manifest['training'];
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION as 2,
    name: o.name,
    version: o.version,
    description: o.description ?? `Variation model taught from ${aligned.length} good image(s): per-pixel reference and `
      + `tolerance at ${width}x${height}; map = smoothed excess over tolerance squashed to 0..1, score = max of the map.`,
    input: {
      name: 'image', shape: [1, 1, height, width], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: NORM.scale, mean: [NORM.mean], std: [NORM.std] },
    },
    outputs: {
      kind: 'anomaly_map', score: { name: SCORE_OUTPUT, shape: [1] }, map: { name: MAP_OUTPUT, shape: mapShape },
      classes: ['good', 'defect'], defectClasses: ['defect'],
    },
    decision: { threshold: 0.5, minDefectAreaPx: o.minDefectAreaPx ?? 0 },
    ...(regOpts ? { registration: { reference: REFERENCE_FILE, ...regOpts } } : {}),
    training,
    sha256: sha256Hex(bytes),
    files: [REFERENCE_FILE],
    sha256s: { [REFERENCE_FILE]: sha256Hex(png) },
  };
  await writeFile(join(dir, MODEL_FILE), bytes);
  await writeFile(join(dir, REFERENCE_FILE), png);
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  // the same gate as any other model
  const pkg = await loadModelPackage(dir);
  log.info({ dir, images: aligned.length, skipped: skipped.length, maxTeachScore: maxTeach, input: `${width}x${height}` }, 'taught package written');
  return { packageDir: dir, manifest: pkg.manifest, skipped, teachScores };
}
