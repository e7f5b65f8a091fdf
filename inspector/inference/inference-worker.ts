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
import { setPriority } from 'node:os';
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { FrameShapeMismatchError, ModelContractMismatchError, ModelOutputInvalidError } from '../core/errors.js';
import type { Manifest } from './manifest-schema.js';
import { checkSessionContract, loadModelPackage } from './model-package.js';
import { FRAME_INPUT_NAME, compileDeployedGraph } from './preprocess-graph.js';
import { baseSessionOptions, createSessionWithFallback, zeroFeeds, type MinimalLogger, type ProviderFallback, type ProviderName } from './providers.js';
import { ensureTrtEngine } from './trt-engine-cache.js';
import { BareTimer } from './bare-timer.js';
import { unsupportedOpFromOrtMessage } from './provider-ops.js';
import { canBin } from './area-binning.js';
import { createFrameBinner } from './area-binning-wasm.js';
import { buildUndistortLut, remapF32, remapU8, type UndistortLut } from '../../calibration/undistort-map.js';
import { createWasmRemap } from '../../calibration/undistort-remap-wasm.js';
import type { CameraModel } from '../../calibration/camera-model.js';
import { toErrorData, type CodedErrorData } from '../core/error-transport.js';
// type-only: frame-registration (plain JS, no OpenCV: any number of workers may register) is imported
// dynamically, only for packages with `registration`
import type { RegistrationFigures } from '../teach/frame-registration.js';

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
  /** nice value for this worker thread (and the ORT threads it creates): shadow/validation runners yield to the live one */
  nice?: number;
  /**
   * The station's lens calibration (full-frame pixels): frames are undistorted right after
   * binning through a precomputed table at the model-input size (calibration/undistort-map.ts)
   */
  undistort?: { camera: CameraModel } | null;
  /**
   * A respawned worker (model-runner.ts supervision) writes its map into its predecessor's
   * shared map, so the runner's `map` stays valid; null/absent: the worker allocates it.
   */
  mapSab?: SharedArrayBuffer | null;
  /** tests only: obey 'debug-hang' and 'debug-exit' (ignored otherwise) */
  testHooks?: boolean;
  /**
   * TensorRT in the providers: its engine is taken from (or built into) this cache root before the
   * session for the line is created (trt-engine-cache.ts); null/absent: TensorRT builds at each start
   */
  trtEngineCacheDir?: string | null;
}

export type ToWorker =
  | { t: 'infer'; buf: ArrayBuffer | null; slot: number }
  | { t: 'bench'; runs: number; buf: ArrayBuffer | null; keep?: boolean }
  /** bare timing interleaved with the line: every n-th judged part's frame again, delayMs after its answer (n 0: off); see 'bareSamples' */
  | { t: 'bareEvery'; n: number; delayMs: number }
  | { t: 'bareSamples' }
  | { t: 'crash' }
  /** test hooks (init.testHooks only): block this thread for ms, as a hung session would; exit(1) */
  | { t: 'debug-hang'; ms: number }
  | { t: 'debug-exit' };


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
  | { t: 'result'; score: number; inferenceMs: number; buf: ArrayBuffer | null;
    /** CLOCK_MONOTONIC ns (process.hrtime.bigint(), the same clock in every thread and process) the job started and ended */
    startNs: bigint; endNs: bigint;
    /** manifest `registration`: this frame's figures (ok=false: not registered, score NaN, session not run) */
    registration?: RegistrationFigures | null }
  | { t: 'inferError'; error: CodedErrorData; buf: ArrayBuffer | null }
  | { t: 'bench'; samples: number[]; withPreprocess: number[]; buf: ArrayBuffer | null }
  /** the interleaved bare timings so far: session.run alone, and the frame's preprocessing + session.run */
  | { t: 'bareSamples'; run: number[]; withPreprocess: number[] };


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
  if (init.nice) setPriority(0, init.nice); // per thread on Linux; ORT's pool threads inherit it
  const t0 = performance.now();
  const pkg = await loadModelPackage(init.packageDir, { providers: init.providers as ProviderName[] });
  const { manifest } = pkg;
  const { bytes, plan } = compileDeployedGraph(pkg.model, manifest, init.frame);
  for (const note of plan.notes) logger.warn({ model: manifest.name }, note);
  const binning = (init.preprocess ?? 'auto') === 'auto' && canBin(plan, width)
    ? { width, height, factorX: 4, factorY: (plan.resize as { factorY: number }).factorY, mul: plan.mul[0]!, add: plan.add[0]! }
    : null;
  // manifest `registration`: resize to uint8, register, warp, normalise in JS; the session runs the model alone
  const frameReg = manifest.registration
    ? await (await import('../teach/frame-registration.js')).createFrameRegistration(pkg.dir, manifest, init.frame, { mul: plan.mul[0]!, add: plan.add[0]! }, binning,
      init.undistort && binning ? buildUndistortLut(init.undistort.camera, init.frame, 4, binning.factorY) : null)
    : null;
  const t1 = performance.now();
  const sessionModel = binning || frameReg ? pkg.modelBytes : bytes;
  const providerList = pkg.providers ?? init.providers;
  // TensorRT: the engine is built here, while the runner starts (never on the running line), or taken from the cache
  let trtModel: Uint8Array | null = null;
  if (init.trtEngineCacheDir && providerList.includes('tensorrt')) {
    try {
      const engine = await ensureTrtEngine({
        model: sessionModel, root: init.trtEngineCacheDir,
        sessionOptions: { ...baseSessionOptions('tensorrt', init.intraOpNumThreads), ...init.sessionOptions },
        build: async (m, o) => { const s = await ort.InferenceSession.create(m, o); try { await s.run(zeroFeeds(s)); } finally { await s.release(); } },
      });
      trtModel = engine.contextModel;
      logger.info({ model: manifest.name, dir: engine.dir, built: engine.built, buildMs: Math.round(engine.buildMs) },
        engine.built ? 'TensorRT engine built and cached' : 'TensorRT engine taken from the cache');
    } catch (err) {
      logger.info({ model: manifest.name, reason: (err as Error).message }, 'TensorRT engine cache not used');
    }
  }
  const { session, provider, fallbacks: sessionFallbacks, placement } = await createSessionWithFallback(sessionModel, {
    providers: providerList, intraOpNumThreads: init.intraOpNumThreads, logger,
    ...(init.sessionOptions ? { sessionOptions: init.sessionOptions } : {}),
    ...(trtModel ? { modelFor: { tensorrt: trtModel } } : {}),
  }).catch((err: Error) => { throw unsupportedOpFromOrtMessage('onnxruntime', err.message) ?? err; });
  const fallbacks = [...pkg.opSkips, ...sessionFallbacks];
  const inputShape = [...manifest.input.shape];
  checkSessionContract(session, binning || frameReg
    ? [{ name: manifest.input.name, type: 'float32', shape: inputShape }]
    : [{ name: FRAME_INPUT_NAME, type: 'uint8', shape: dims }], manifest);
  const t2 = performance.now();

  const scoreSpec = manifest.outputs.score;
  // classification models have no map: their probabilities [1,K] travel in its place (the per-class
  // rule reads them: decision-rule.ts ClassDecision; the runner reports no map)
  const mapSpec = manifest.outputs.map ?? manifest.outputs.probabilities ?? { name: '', shape: [0, 0] };
  const mapLen = mapSpec.shape.reduce((a, b) => a * b, 1);
  const scoreLocal = new Float32Array(scoreSpec.shape.reduce((a, b) => a * b, 1));
  const mapLocal = new Float32Array(mapLen);
  if (init.mapSab && init.mapSab.byteLength !== mapLen * 4) {
    throw new ModelContractMismatchError(`the runner's shared map has ${init.mapSab.byteLength} bytes, this model's output needs ${mapLen * 4}`);
  }
  const mapSab = init.mapSab ?? new SharedArrayBuffer(mapLen * 4);
  const mapShared = new Float32Array(mapSab);
  const fetches: InferenceSession.NullableOnnxValueMapType = {
    [scoreSpec.name]: new ort.Tensor('float32', scoreLocal, scoreSpec.shape),
    ...(mapLen > 0 ? { [mapSpec.name]: new ort.Tensor('float32', mapLocal, mapSpec.shape) } : {}),
  };
  const staging = new Uint8Array(frameBytes);
  const stagingTensor = new ort.Tensor('uint8', staging, dims);
  const sharedFrame = init.frameSab ? new Uint8Array(init.frameSab) : null;
  const ringViews = init.inputRing
    ? Array.from({ length: init.inputRing.slots }, (_, i) => new Uint8Array(init.inputRing!.frames, i * init.inputRing!.slotBytes, frameBytesOf(init)))
    : [];
  const binned = new Float32Array(inputShape.reduce((a, b) => a * b, 1));
  // WebAssembly SIMD where the runtime has it (~7x faster than the JS loop, same floats)
  const binner = binning ? createFrameBinner(width, height, binning.factorY) : null;
  if (binner) logger.info({ model: manifest.name, binner: binner.kind }, 'area binning');
  const feeds: Record<string, ort.Tensor> = binning || frameReg
    ? { [manifest.input.name]: new ort.Tensor('float32', binned, inputShape) }
    : { [FRAME_INPUT_NAME]: stagingTensor };
  // lens calibration: a table at the model-input size (binning path) or the full frame (graph path)
  let lut: UndistortLut | null = null;
  let lutFull: UndistortLut | null = null;
  const unwarped = new Float32Array(init.undistort && binning ? binned.length : 0);
  if (init.undistort && frameReg) {
    // the registration path undistorts its binned bytes itself (frame-registration.ts)
    if (!binning) logger.warn({ model: manifest.name }, 'lens undistortion needs the JS binning path: this registering model sees frames as the camera does');
  } else if (init.undistort && binning) {
    lut = buildUndistortLut(init.undistort.camera, init.frame, 4, binning.factorY);
  } else if (init.undistort) {
    lutFull = buildUndistortLut(init.undistort.camera, init.frame, 1);
    logger.warn({ model: manifest.name }, 'lens undistortion on the full frame (no JS binning for this model): ~5 ms per frame');
  }
  // the table in WebAssembly where the runtime has it (same floats as remapF32, about twice as fast)
  const lutWasm = lut ? createWasmRemap(lut) : null;
  /** put a frame where the session reads it: bin it (fast path) or stage it (graph path), undistorted when calibrated */
  const load = (src: Uint8Array): void => {
    if (lut) { binner!.binF32(src, binning!, unwarped); if (lutWasm) lutWasm.remapF32(unwarped, binned); else remapF32(unwarped, lut, binned); return; }
    if (lutFull) { remapU8(src, lutFull, staging); return; }
    if (frameReg) frameReg.prepare(src, binned);
    else if (binning) binner!.binF32(src, binning, binned);
    else staging.set(src);
  };

  // ---- warm-up on a synthetic frame; every run's outputs must be finite
  syntheticFrame(staging, width);
  if (binning || frameReg) load(staging);
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
  const reply = { t: 'result' as const, score: 0, inferenceMs: 0, buf: null as ArrayBuffer | null, startNs: 0n, endNs: 0n,
    registration: frameReg ? frameReg.last : null };
  const bare = new BareTimer(frameBytes, load, () => session.run(feeds, fetches)); // the benchmark's interleaved bare runs
  const transferList: ArrayBuffer[] = [];
  const bindFrame = (buf: ArrayBuffer | null, slot = -1): void => {
    if (slot >= 0) {
      load(ringViews[slot]!);
    } else if (init.transport === 'transfer') {
      if (!buf || buf.byteLength !== frameBytes) throw new FrameShapeMismatchError(`worker got ${buf?.byteLength ?? 0} bytes, expected ${frameBytes}`);
      if (binning || frameReg || lutFull) load(new Uint8Array(buf));
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
            const busy = bare.starting(); // non-null only while a benchmark's bare run holds the session
            if (busy) await busy;
            const startNs = process.hrtime.bigint(); // the fast path's binning is preprocessing: it counts
            bindFrame(m.buf, m.slot);
            const unregistrable = frameReg !== null && !frameReg.last.ok;
            if (!unregistrable) await session.run(feeds, fetches);
            const endNs = process.hrtime.bigint();
            reply.startNs = startNs;
            reply.endNs = endNs;
            reply.inferenceMs = Number(endNs - startNs) / 1e6;
            reply.score = unregistrable ? Number.NaN : scoreLocal[0]!;
            if (unregistrable) mapLocal.fill(0);
            mapShared.set(mapLocal);
            reply.buf = m.buf;
            post(reply, giveBack(m.buf));
            // a timing only, never the part's answer: the frame is kept now, run again between parts
            const again = bare.judgedPart(m.slot >= 0 ? ringViews[m.slot]! : sharedFrame, !unregistrable);
            if (again) await again;
          } catch (err) {
            bare.failed();
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
              binner!.binF32(staging, binning, binned);
              await session.run(feeds, fetches);
              withPreprocess.push(performance.now() - s);
            }
            post({ t: 'bench', samples, withPreprocess: binning ? withPreprocess : samples, buf: m.buf }, giveBack(m.buf));
          } catch (err) {
            post({ t: 'inferError', error: toErrorData(err), buf: m.buf }, giveBack(m.buf));
          }
          return;
        }
        case 'bareEvery':
          bare.configure(m.n, m.delayMs);
          return;
        case 'bareSamples':
          post({ t: 'bareSamples', ...bare.samples() });
          return;
        case 'crash':
          // test hook: an uncaught exception kills the worker like a native fault would
          setImmediate(() => { throw new Error('inference worker crash requested (test hook)'); });
          return;
        case 'debug-hang':
          if (!init.testHooks) { logger.warn({}, 'debug-hang ignored: test hooks are off'); return; }
          // blocks this thread like a session.run that never returns; terminate() interrupts the wait
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms);
          return;
        case 'debug-exit':
          if (!init.testHooks) { logger.warn({}, 'debug-exit ignored: test hooks are off'); return; }
          process.exit(1); // in a worker thread: ends this thread with exit code 1
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
