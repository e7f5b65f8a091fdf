/**
 * The inference worker thread: owns the onnxruntime-node session (whose run()
 * blocks its thread) and runs it on frames handed over by model-runner.ts.
 *
 * Start-up (from workerData): load + check the package, compile the deployed
 * model (preprocessing + model), create the session with provider fallback,
 * check the session's metadata, warm up on a synthetic frame and check the
 * outputs are finite; then post `ready` (or `error` with the coded error).
 *
 * Frame transport (ONE preallocated frame buffer, one frame in flight):
 * onnxruntime-node 1.30 refuses a Tensor over SharedArrayBuffer memory
 * ("Invalid argument", inputs and pre-allocated outputs alike), so:
 *  - 'transfer' (default): one ArrayBuffer ping-pongs between the threads in the
 *    postMessage transfer list; the worker's Tensor wraps it, no copy here.
 *  - 'shared': the frame sits in a SharedArrayBuffer and the worker copies it
 *    into a private staging buffer (one extra W*H memcpy) wrapped by one Tensor.
 * Outputs: ORT writes score and map into pre-allocated (private) tensors; the
 * map is then copied into the shared Float32Array the main thread reads.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { FrameShapeMismatchError, ModelOutputInvalidError } from '../core/errors.js';
import type { Manifest } from './manifest-schema.js';
import { checkSessionContract, loadModelPackage } from './model-package.js';
import { FRAME_INPUT_NAME, compileDeployedGraph } from './preprocess-graph.js';
import { createSessionWithFallback, type MinimalLogger, type ProviderFallback } from './providers.js';
import { binArea4, canBin } from './area-binning.js';
import { toErrorData, type CodedErrorData } from '../core/error-transport.js';

export type FrameTransport = 'transfer' | 'shared';

export const WORKER_KIND = 'inspector-inference';

export interface WorkerInit {
  kind: typeof WORKER_KIND;
  packageDir: string;
  frame: { width: number; height: number };
  providers: string[];
  intraOpNumThreads: number;
  warmupRuns: number;
  transport: FrameTransport;
  /** W*H bytes, used when transport is 'shared' */
  frameSab: SharedArrayBuffer | null;
  /** merged over the default session options (plain data: it crosses the thread boundary) */
  sessionOptions?: InferenceSession.SessionOptions;
  /**
   * The capture ring (shared transport): a frame already sitting in a ring slot
   * is read from there directly, saving the main thread a copy.
   */
  inputRing?: { frames: SharedArrayBuffer; slots: number; slotBytes: number } | null;
  /**
   * 'auto': area resizes by 4 run as JS binning on the uint8 frame feeding the
   * model alone (see area-binning.ts); anything else runs the compiled graph.
   * 'graph': always the compiled graph (tests compare the two).
   */
  preprocess?: 'auto' | 'graph';
}

export type ToWorker =
  | { t: 'infer'; buf: ArrayBuffer | null; slot: number }
  | { t: 'bench'; runs: number; buf: ArrayBuffer | null; keep?: boolean }
  | { t: 'crash' };


export type FromWorker =
  | { t: 'log'; level: 'warn' | 'info'; obj: object; msg: string }
  | {
    t: 'ready'; provider: string; fallbacks: ProviderFallback[]; manifest: Manifest; mapSab: SharedArrayBuffer;
    /** how the manifest's preprocessing runs: JS area binning + model, or the compiled ONNX graph */
    preprocess: 'js-area-binning' | 'onnx-graph';
    mapWidth: number; mapHeight: number; notes: string[]; placement: Record<string, number> | null;
    startup: { loadMs: number; sessionMs: number; warmupMs: number; warmupLastMs: number };
  }
  | { t: 'error'; error: CodedErrorData }
  | { t: 'result'; score: number; inferenceMs: number; buf: ArrayBuffer | null }
  | { t: 'inferError'; error: CodedErrorData; buf: ArrayBuffer | null }
  | { t: 'bench'; samples: number[]; withPreprocess: number[]; buf: ArrayBuffer | null };


function frameBytesOf(init: WorkerInit): number {
  return init.frame.width * init.frame.height;
}

/** A deterministic non-trivial frame (LCG noise over a gradient) for warm-up. */
export function syntheticFrame(into: Uint8Array, width: number): Uint8Array {
  let s = 0x2545f491;
  for (let i = 0; i < into.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    into[i] = (((i % width) >> 2) + (s >>> 26)) & 0xff;
  }
  return into;
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

async function main(port: NonNullable<typeof parentPort>, init: WorkerInit): Promise<void> {
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  const logger: MinimalLogger = {
    warn: (obj, msg) => post({ t: 'log', level: 'warn', obj, msg }),
    info: (obj, msg) => post({ t: 'log', level: 'info', obj, msg }),
  };
  const { width, height } = init.frame;
  const frameBytes = width * height;
  const dims = [1, 1, height, width];

  // ---- start-up
  const t0 = performance.now();
  const pkg = await loadModelPackage(init.packageDir);
  const { manifest } = pkg;
  const { bytes, plan } = compileDeployedGraph(pkg.model, manifest, init.frame);
  for (const note of plan.notes) logger.warn({ model: manifest.name }, note);
  const binning = (init.preprocess ?? 'auto') === 'auto' && canBin(plan, width)
    ? { width, height, factorX: 4, factorY: (plan.resize as { factorY: number }).factorY, mul: plan.mul[0]!, add: plan.add[0]! }
    : null;
  const t1 = performance.now();
  const { session, provider, fallbacks, placement } = await createSessionWithFallback(binning ? pkg.modelBytes : bytes, {
    providers: init.providers, intraOpNumThreads: init.intraOpNumThreads, logger,
    ...(init.sessionOptions ? { sessionOptions: init.sessionOptions } : {}),
  });
  const inputShape = [...manifest.input.shape];
  checkSessionContract(session, binning
    ? [{ name: manifest.input.name, type: 'float32', shape: inputShape }]
    : [{ name: FRAME_INPUT_NAME, type: 'uint8', shape: dims }], manifest);
  const t2 = performance.now();

  const scoreSpec = manifest.outputs.score;
  const mapSpec = manifest.outputs.map;
  const mapLen = mapSpec.shape.reduce((a, b) => a * b, 1);
  const scoreLocal = new Float32Array(scoreSpec.shape.reduce((a, b) => a * b, 1));
  const mapLocal = new Float32Array(mapLen);
  const mapSab = new SharedArrayBuffer(mapLen * 4);
  const mapShared = new Float32Array(mapSab);
  const fetches: InferenceSession.NullableOnnxValueMapType = {
    [scoreSpec.name]: new ort.Tensor('float32', scoreLocal, scoreSpec.shape),
    [mapSpec.name]: new ort.Tensor('float32', mapLocal, mapSpec.shape),
  };
  const staging = new Uint8Array(frameBytes);
  const stagingTensor = new ort.Tensor('uint8', staging, dims);
  const sharedFrame = init.frameSab ? new Uint8Array(init.frameSab) : null;
  const ringViews = init.inputRing
    ? Array.from({ length: init.inputRing.slots }, (_, i) => new Uint8Array(init.inputRing!.frames, i * init.inputRing!.slotBytes, frameBytesOf(init)))
    : [];
  const binned = new Float32Array(inputShape.reduce((a, b) => a * b, 1));
  const binAcc = new Uint32Array(width >>> 2);
  const feeds: Record<string, ort.Tensor> = binning
    ? { [manifest.input.name]: new ort.Tensor('float32', binned, inputShape) }
    : { [FRAME_INPUT_NAME]: stagingTensor };
  /** put a frame where the session reads it: bin it (fast path) or stage it (graph path) */
  const load = (src: Uint8Array): void => {
    if (binning) binArea4(src, binning, binned, binAcc);
    else staging.set(src);
  };

  // ---- warm-up on a synthetic frame; every run's outputs must be finite
  syntheticFrame(staging, width);
  if (binning) load(staging);
  const runs = Math.max(1, init.warmupRuns);
  let lastMs = 0;
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await session.run(feeds, fetches);
    lastMs = performance.now() - s;
    const bad = Math.max(firstNonFinite(scoreLocal), firstNonFinite(mapLocal));
    if (bad >= 0) {
      const badScore = firstNonFinite(scoreLocal) >= 0;
      throw new ModelOutputInvalidError(`warm-up run ${i + 1}/${runs} on a synthetic frame gave a non-finite `
        + (badScore ? `score (${scoreLocal[0]})` : `anomaly map value at index ${firstNonFinite(mapLocal)}`));
    }
  }
  staging.fill(0);
  const t3 = performance.now();

  post({
    t: 'ready', provider, fallbacks, manifest, mapSab, preprocess: binning ? 'js-area-binning' : 'onnx-graph', mapWidth: mapSpec.shape[mapSpec.shape.length - 1]!,
    mapHeight: mapSpec.shape[mapSpec.shape.length - 2]!, notes: plan.notes, placement: placement ?? null,
    startup: { loadMs: t1 - t0, sessionMs: t2 - t1, warmupMs: t3 - t2, warmupLastMs: lastMs },
  });

  // ---- hot path
  const reply = { t: 'result' as const, score: 0, inferenceMs: 0, buf: null as ArrayBuffer | null };
  const transferList: ArrayBuffer[] = [];
  const bindFrame = (buf: ArrayBuffer | null, slot = -1): void => {
    if (slot >= 0) {
      load(ringViews[slot]!);
    } else if (init.transport === 'transfer') {
      if (!buf || buf.byteLength !== frameBytes) throw new FrameShapeMismatchError(`worker got ${buf?.byteLength ?? 0} bytes, expected ${frameBytes}`);
      if (binning) load(new Uint8Array(buf));
      else feeds[FRAME_INPUT_NAME] = new ort.Tensor('uint8', new Uint8Array(buf), dims);
    } else {
      load(sharedFrame!);
    }
  };
  const giveBack = (buf: ArrayBuffer | null): ArrayBuffer[] => {
    transferList.length = 0;
    if (buf) transferList.push(buf);
    return transferList;
  };

  port.on('message', (m: ToWorker) => {
    void (async () => {
      switch (m.t) {
        case 'infer': {
          try {
            const s = performance.now(); // the fast path's binning is preprocessing: it counts
            bindFrame(m.buf, m.slot);
            await session.run(feeds, fetches);
            reply.inferenceMs = performance.now() - s;
            reply.score = scoreLocal[0]!;
            mapShared.set(mapLocal);
            reply.buf = m.buf;
            post(reply, giveBack(m.buf));
          } catch (err) {
            post({ t: 'inferError', error: toErrorData(err), buf: m.buf }, giveBack(m.buf));
          }
          return;
        }
        case 'bench': {
          try {
            if (!m.keep) bindFrame(m.buf);
            const samples: number[] = [];
            const withPreprocess: number[] = [];
            for (let i = 0; i < m.runs; i++) {
              const s = performance.now();
              await session.run(feeds, fetches);
              samples.push(performance.now() - s);
            }
            // the same, with the preprocessing the fast path does outside session.run (binning cost
            // does not depend on pixel values: the staged synthetic frame stands in)
            for (let i = 0; binning && i < m.runs; i++) {
              const s = performance.now();
              binArea4(staging, binning, binned, binAcc);
              await session.run(feeds, fetches);
              withPreprocess.push(performance.now() - s);
            }
            post({ t: 'bench', samples, withPreprocess: binning ? withPreprocess : samples, buf: m.buf }, giveBack(m.buf));
          } catch (err) {
            post({ t: 'inferError', error: toErrorData(err), buf: m.buf }, giveBack(m.buf));
          }
          return;
        }
        case 'crash':
          // test hook: an uncaught exception kills the worker like a native fault would
          setImmediate(() => { throw new Error('inference worker crash requested (test hook)'); });
          return;
      }
    })();
  });
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerInit> | null)?.kind === WORKER_KIND) {
  const port = parentPort;
  main(port, workerData as WorkerInit).catch((err: unknown) => {
    port.postMessage({ t: 'error', error: toErrorData(err) } satisfies FromWorker);
  });
}
