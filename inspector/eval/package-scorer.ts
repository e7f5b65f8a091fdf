/**
 * Score images of ANY size with a model package, the way the station does:
 * the manifest's preprocessing (resize + normalisation) is compiled into the
 * ONNX graph for each distinct frame size (`compileDeployedModel`, the same
 * code the inference worker runs), one onnxruntime session per size, cached.
 * The station's fast path for `area`-by-4 (JS binning) computes the same
 * numbers to float rounding (test/preprocess-paths.test.ts).
 *
 * The session runs in-process (eval is an offline command, not the hot path).
 * `ms` is session.run wall time: preprocessing + model (a new session is run
 * once untimed first, like the station's warm-up).
 *
 * Packages with `registration` (taught ones) are scored the way the inference
 * worker scores them: the frame is resized, registered to the package's
 * reference and warped in JS (the teach helper's createFrameRegistration), and
 * an unregistrable frame is not scored (the station rejects it).
 */
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import type { GrayImage } from '../core/gray-image.js';
import { canBin } from '../inference/area-binning.js';
import { decideOutput, decisionPortFor, effectiveThreshold, type ClassVerdict, type DecisionPort } from '../inference/decision-rule.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { loadModelPackage, type ModelPackage } from '../inference/model-package.js';
import { FRAME_INPUT_NAME, compileDeployedModel, planPreprocessing } from '../inference/preprocess-graph.js';
import { createFrameRegistration, type FrameRegistration } from '../teach/frame-registration.js';

export interface ScoredImage {
  score: number;
  /** defect probability per map cell (max over defect-class channels), null for classification models */
  map: Float32Array | null;
  mapWidth: number;
  mapHeight: number;
  /** session.run wall time in ms (preprocessing graph + model; with registration: resize + register + warp + model) */
  ms: number;
  /** manifest `registration`: whether the frame registered (false: the station rejects it UNREGISTRABLE, score NaN); null without */
  registered: boolean | null;
  /** why registration refused the frame (registered false only) */
  registrationReason?: string;
  /**
   * What the station's per-class rule reads (decision-rule.ts ClassDecision): the K-channel map of a
   * multi-class segmentation, or a classification's K probabilities; null for single-channel outputs.
   */
  classValues: Float32Array | null;
}

export interface PackageScorerOptions {
  intraOpNumThreads?: number;
}

interface TensorSpec { name: string; shape: number[] }

/** Which channels of a [1,K,h,w] map mean "defect": those named in defectClasses when K = classes. */
export function defectChannels(manifest: Manifest, channels: number): number[] {
  const { classes, defectClasses } = manifest.outputs;
  if (channels === 1) return [0];
  if (classes.length === channels) {
    const idx = classes.map((c, i) => (defectClasses.includes(c) ? i : -1)).filter((i) => i >= 0);
    if (idx.length > 0) return idx;
  }
  return [...Array(channels).keys()];
}

/** One frame size's compiled session; with registration, the JS registration stage and the model input it fills. */
interface SizeEntry {
  session: InferenceSession;
  reg: FrameRegistration | null;
  input: Float32Array | null;
}

export class PackageScorer {
  private readonly sessions = new Map<string, SizeEntry>();
  private readonly ports = new Map<string, DecisionPort>();
  readonly manifest: Manifest;
  private readonly mapSpec: TensorSpec | null;
  private readonly channels: number[];

  private constructor(readonly pkg: ModelPackage, private readonly opts: PackageScorerOptions) {
    this.manifest = pkg.manifest;
    this.mapSpec = (pkg.manifest.outputs as { map?: TensorSpec }).map ?? null;
    const k = this.mapSpec && this.mapSpec.shape.length >= 3 ? this.mapSpec.shape[this.mapSpec.shape.length - 3]! : 1;
    this.channels = defectChannels(pkg.manifest, k);
  }

  static async open(dir: string, opts: PackageScorerOptions = {}): Promise<PackageScorer> {
    return new PackageScorer(await loadModelPackage(dir), opts);
  }

  /** the threshold the station decides with (decision-rule.ts) */
  get threshold(): number {
    return effectiveThreshold(this.manifest);
  }

  /**
   * The station's verdict on a scored image (decision-rule.ts `decideOutput`, the rule the line,
   * the shadow and the validation gate use): effective / per-class thresholds, the minimum defect
   * area measured on this image size, and an unregistrable frame is a reject.
   */
  verdict(s: ScoredImage, width: number, height: number): ClassVerdict {
    const key = `${width}x${height}`;
    let port = this.ports.get(key);
    if (!port) { port = decisionPortFor(this.manifest, width, height); this.ports.set(key, port); }
    return decideOutput(port, s.score, s.classValues ?? s.map, s.registered !== false);
  }

  /** How many frame sizes have a compiled session. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * The session for one frame size. Without registration: the manifest's preprocessing compiled in front of
   * the model. With registration: as the inference worker does it, resize (JS binning where the station bins)
   * + register + warp + normalise in JS (inspector/teach/frame-registration.ts), then the model alone.
   */
  private async entry(width: number, height: number): Promise<SizeEntry> {
    const key = `${width}x${height}`;
    let e = this.sessions.get(key);
    if (!e) {
      const frame = { width, height };
      let reg: FrameRegistration | null = null;
      let bytes: Uint8Array;
      if (this.manifest.registration) {
        const plan = planPreprocessing(this.manifest, frame);
        const binning = canBin(plan, width) && plan.resize.kind === 'area'
          ? { width, height, factorX: 4, factorY: plan.resize.factorY, mul: plan.mul[0]!, add: plan.add[0]! } : null;
        reg = await createFrameRegistration(this.pkg.dir, this.manifest, frame, { mul: plan.mul[0]!, add: plan.add[0]! }, binning);
        bytes = this.pkg.modelBytes;
      } else {
        bytes = compileDeployedModel(this.pkg.modelBytes, this.manifest, frame);
      }
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'], intraOpNumThreads: this.opts.intraOpNumThreads ?? 1, interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      const input = reg ? new Float32Array(this.manifest.input.shape.reduce((a, b) => a * b, 1)) : null;
      e = { session, reg, input };
      this.sessions.set(key, e);
    }
    return e;
  }

  async score(img: GrayImage): Promise<ScoredImage> {
    const fresh = !this.sessions.has(`${img.width}x${img.height}`);
    const { session, reg, input } = await this.entry(img.width, img.height);
    const feeds = reg
      ? { [this.manifest.input.name]: new ort.Tensor('float32', input!, [...this.manifest.input.shape]) }
      : { [FRAME_INPUT_NAME]: new ort.Tensor('uint8', img.data, [1, 1, img.height, img.width]) };
    // a new session's first run allocates its buffers: run it once untimed, as the station's warm-up does
    if (fresh && !reg) await session.run(feeds);
    const t0 = performance.now();
    if (reg) {
      const r = reg.prepare(img.data, input!);
      if (!r.ok) {
        // the station does not run the model on an unregistrable frame: it rejects it
        return {
          score: Number.NaN, map: null, mapWidth: 0, mapHeight: 0, ms: performance.now() - t0, registered: false, classValues: null,
          registrationReason: r.reason ?? 'not registrable',
        };
      }
    }
    const out = await session.run(feeds);
    const ms = performance.now() - t0;
    const registered = reg ? true : null;
    const score = Number((out[this.manifest.outputs.score.name]!.data as Float32Array)[0]);
    const probabilities = (this.manifest.outputs as { probabilities?: TensorSpec }).probabilities;
    if (!this.mapSpec) {
      const classValues = probabilities ? Float32Array.from(out[probabilities.name]!.data as Float32Array) : null;
      return { score, map: null, mapWidth: 0, mapHeight: 0, ms, registered, classValues };
    }
    const shape = this.mapSpec.shape;
    const w = shape[shape.length - 1]!;
    const h = shape[shape.length - 2]!;
    const data = out[this.mapSpec.name]!.data as Float32Array;
    let map: Float32Array;
    if (this.channels.length === 1) {
      map = data.slice(this.channels[0]! * w * h, (this.channels[0]! + 1) * w * h);
    } else {
      map = new Float32Array(w * h).fill(-Infinity);
      for (const c of this.channels) for (let i = 0; i < w * h; i++) map[i] = Math.max(map[i]!, data[c * w * h + i]!);
    }
    const classValues = data.length > w * h ? data.slice() : null;
    for (const t of Object.values(out)) (t as { dispose?: () => void }).dispose?.();
    return { score, map, mapWidth: w, mapHeight: h, ms, registered, classValues };
  }

  async close(): Promise<void> {
    for (const e of this.sessions.values()) await e.session.release();
    this.sessions.clear();
  }
}
