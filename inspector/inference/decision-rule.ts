/**
 * The package's decision rule, as the station applies it (manifest `decision`):
 *
 * - the threshold: `classThresholds[c]` for a package with a single defect class c,
 *   else `threshold`; an image score at or above it is a defect candidate;
 * - the minimum defect area: with a map output, the candidate is a reject only if the
 *   map cells at or above the threshold cover at least `minDefectAreaPx` frame pixels.
 *
 * Multi-class outputs (segmentation map [1,K,h,w] with K > 1, classification probabilities
 * [1,K]) are decided per class (`ClassDecision`): a part is a reject when any defect class's
 * score (the max of its map channel / its probability) reaches that class's threshold
 * (`classThresholds[c]`, else `threshold`) and, with a map and `minDefectAreaPx` > 0, its
 * channel's cells at or above that threshold cover at least `minDefectAreaPx` frame pixels.
 * The verdict's defect class is the worst one: the triggering class with the highest score.
 * Single-channel maps keep the image-score rule above, unchanged.
 */
import type { Manifest } from './manifest-schema.js';
import { letterboxCellAreaPx } from './letterbox-map.js';
import { ResultCode, type ResultCodeValue, type Verdict } from '../core/types.js';

export function effectiveThreshold(manifest: Manifest): number {
  const { decision, outputs } = manifest;
  const perClass = (decision as { classThresholds?: Record<string, number> }).classThresholds;
  if (perClass && outputs.defectClasses.length === 1) {
    const t = perClass[outputs.defectClasses[0]!];
    if (t !== undefined) return t;
  }
  return decision.threshold;
}

/** Frame pixels covered by one cell of a single-channel map; NaN when the area cannot be measured. */
export function mapCellAreaPx(manifest: Manifest, frameWidth: number, frameHeight: number): number {
  const shape = manifest.outputs.map?.shape;
  if (!shape || shape.length < 2) return Number.NaN;
  const channels = shape.length >= 3 ? shape[shape.length - 3]! : 1;
  if (channels !== 1) return Number.NaN;
  return cellAreaPxOf(manifest, shape[shape.length - 1]!, shape[shape.length - 2]!, frameWidth, frameHeight);
}

/** Frame pixels per cell of a w x h map: the frame stretched over the map, or for `letterbox` the scaled frame's share. */
function cellAreaPxOf(manifest: Manifest, w: number, h: number, frameWidth: number, frameHeight: number): number {
  return manifest.input.resize === 'letterbox'
    ? letterboxCellAreaPx(manifest, w, h, frameWidth, frameHeight)
    : (frameWidth * frameHeight) / (w * h);
}

/** Area (frame pixels) of the map cells at or above the threshold. No allocation. */
export function defectAreaPx(map: Float32Array, threshold: number, cellAreaPx: number): number {
  if (!Number.isFinite(cellAreaPx)) return Number.NaN;
  let n = 0;
  for (let i = 0; i < map.length; i++) if (map[i]! >= threshold) n++;
  return n * cellAreaPx;
}

/** A decision of the per-class rule (shared constant objects: deciding allocates nothing). */
export interface ClassVerdict { verdict: Verdict; code: ResultCodeValue }
const PASS: ClassVerdict = Object.freeze({ verdict: 'pass', code: ResultCode.PASS });
const DEFECT: ClassVerdict = Object.freeze({ verdict: 'reject', code: ResultCode.DEFECT });
const ERROR: ClassVerdict = Object.freeze({ verdict: 'reject', code: ResultCode.INFERENCE_ERROR });

/**
 * The per-class rule of a multi-class package, built once per model runner. `decide()` reads
 * the worker's shared output (the K-channel map, or the K probabilities) and writes the worst
 * class into `worstClass` / `worstScore` (null / NaN on a pass); no allocation per part.
 */
export class ClassDecision {
  /** the defect classes, in channel order */
  readonly names: readonly string[];
  /** their channel (index in outputs.classes) and threshold */
  readonly channels: Int32Array;
  readonly thresholds: Float64Array;
  /** values per channel (h*w for a map, 1 for probabilities) */
  readonly cells: number;
  /** frame pixels per map cell (NaN: probabilities, no area) */
  readonly cellAreaPx: number;
  /** set by decide(): the worst triggering class (null: pass or error) and its score */
  worstClass: string | null = null;
  worstScore = Number.NaN;
  /** max over the defect channels per cell (map outputs): the one-channel map the image writer saves */
  private readonly defectMapBuf: Float32Array;

  private constructor(names: string[], channels: number[], thresholds: number[], cells: number, cellAreaPx: number) {
    this.names = names;
    this.channels = Int32Array.from(channels);
    this.thresholds = Float64Array.from(thresholds);
    this.cells = cells;
    this.cellAreaPx = cellAreaPx;
    this.defectMapBuf = new Float32Array(Number.isFinite(cellAreaPx) ? cells : 0);
  }

  /**
   * The rule of a package, or null when its output is single-channel (the image-score rule
   * applies). `frameWidth * frameHeight` is the frame the map covers (for the defect area).
   */
  static fromManifest(manifest: Manifest, frameWidth: number, frameHeight: number): ClassDecision | null {
    const { outputs, decision } = manifest;
    const perClass = (decision as { classThresholds?: Record<string, number> }).classThresholds ?? {};
    let cells: number;
    let cellAreaPx: number;
    if (outputs.kind === 'classification' && outputs.probabilities) {
      cells = 1;
      cellAreaPx = Number.NaN;
    } else if (outputs.kind === 'segmentation' && outputs.map && outputs.map.shape.length === 4 && outputs.map.shape[1]! > 1) {
      const [, k, h, w] = outputs.map.shape as [number, number, number, number];
      if (k !== outputs.classes.length) return null; // refused by the package check; never decided here
      cells = h * w;
      cellAreaPx = cellAreaPxOf(manifest, w, h, frameWidth, frameHeight);
    } else {
      return null;
    }
    const names: string[] = [];
    const channels: number[] = [];
    const thresholds: number[] = [];
    outputs.classes.forEach((c, i) => {
      if (!outputs.defectClasses.includes(c)) return;
      names.push(c);
      channels.push(i);
      thresholds.push(perClass[c] ?? decision.threshold);
    });
    return new ClassDecision(names, channels, thresholds, cells, cellAreaPx);
  }

  /**
   * `values`: the map (K channels of `cells` values, channel-major) or the K probabilities.
   * `score` is the image score: not finite = the inference failed (a reject with its code).
   */
  decide(score: number, values: Float32Array, minDefectAreaPx: number): ClassVerdict {
    this.worstClass = null;
    this.worstScore = Number.NaN;
    if (!Number.isFinite(score)) return ERROR;
    const n = this.cells;
    const useArea = minDefectAreaPx > 0 && Number.isFinite(this.cellAreaPx);
    let worst = -1;
    let worstScore = -Infinity;
    for (let j = 0; j < this.channels.length; j++) {
      const t = this.thresholds[j]!;
      const off = this.channels[j]! * n;
      let max = -Infinity;
      let over = 0;
      for (let i = off; i < off + n; i++) {
        const v = values[i]!;
        if (v > max) max = v;
        if (v >= t) over++;
      }
      if (!(max >= t)) continue;
      if (useArea && over * this.cellAreaPx < minDefectAreaPx) continue; // too small to matter
      if (max > worstScore) { worst = j; worstScore = max; }
    }
    if (worst < 0) return PASS;
    this.worstClass = this.names[worst]!;
    this.worstScore = worstScore;
    return DEFECT;
  }

  /** Map outputs: per cell, the max over the defect channels (a view, overwritten by the next call). */
  defectMap(values: Float32Array): Float32Array {
    const out = this.defectMapBuf;
    const n = out.length;
    if (n === 0) return out;
    out.fill(this.channels.length > 0 ? -Infinity : 0); // no defect class: nothing to show
    for (let j = 0; j < this.channels.length; j++) {
      const off = this.channels[j]! * n;
      for (let i = 0; i < n; i++) { const v = values[off + i]!; if (v > out[i]!) out[i] = v; }
    }
    return out;
  }
}

// ---------------------------------------------------------------- the one verdict of a model output

/**
 * What the rule needs of a loaded package: a ModelRunner has all of it, the eval scorer builds
 * it per image size (`decisionPortFor`). The line, the shadow, the validation gate and eval
 * all decide through `decideOutput` with such a port, so a candidate is gated, shadowed and
 * evaluated under exactly the rule it will run live under (test/decision-parity.test.ts).
 */
export interface DecisionPort {
  /** the effective threshold (`effectiveThreshold`) */
  readonly threshold: number;
  /** manifest decision.minDefectAreaPx (0 / absent: off) */
  readonly minDefectAreaPx?: number;
  /** frame pixels per cell of a single-channel map (NaN / absent: no area can be measured) */
  readonly mapCellAreaPx?: number;
  /** multi-class outputs: the per-class rule over the K channels / K probabilities */
  readonly classRule?: ClassDecision | null;
}

/** The port of a package for frames of one size (eval scores images of many sizes). */
export function decisionPortFor(manifest: Manifest, frameWidth: number, frameHeight: number): DecisionPort {
  return {
    threshold: effectiveThreshold(manifest),
    minDefectAreaPx: manifest.decision.minDefectAreaPx,
    mapCellAreaPx: mapCellAreaPx(manifest, frameWidth, frameHeight),
    classRule: ClassDecision.fromManifest(manifest, frameWidth, frameHeight),
  };
}

const UNREGISTRABLE: ClassVerdict = Object.freeze({ verdict: 'reject', code: ResultCode.UNREGISTRABLE });

/**
 * The verdict of one model output under the package's rule. `values`: what the model wrote
 * (the single-channel map, the K-channel map or the K probabilities; null/empty: a score
 * only). `registered` false: a taught package could not register the frame (a reject with its
 * own code, whatever the score). Returns shared constants: nothing is allocated per part; a
 * multi-class rule leaves the worst class in `port.classRule.worstClass` (`defectClassOf`).
 */
export function decideOutput(port: DecisionPort, score: number, values: Float32Array | null | undefined, registered = true): ClassVerdict {
  if (!registered) return UNREGISTRABLE;
  const rule = port.classRule;
  const minArea = port.minDefectAreaPx ?? 0;
  if (rule && values) return rule.decide(score, values, minArea);
  if (!Number.isFinite(score)) return ERROR;
  if (!(score >= port.threshold)) return PASS;
  if (minArea > 0 && values && values.length > 0) {
    const area = defectAreaPx(values, port.threshold, port.mapCellAreaPx ?? Number.NaN);
    if (Number.isFinite(area) && area < minArea) return PASS; // too small to matter
  }
  return DEFECT;
}

/** The defect class of a DEFECT verdict just decided with `port` (null: none, or not a defect). */
export function defectClassOf(port: DecisionPort, v: ClassVerdict, defectClasses: readonly string[] | undefined): string | null {
  if (v.code !== ResultCode.DEFECT) return null;
  if (port.classRule) return port.classRule.worstClass;
  return defectClasses?.length === 1 ? defectClasses[0]! : null;
}
