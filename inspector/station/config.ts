/**
 * Station configuration: declared with TypeBox, defaults filled in, validated
 * once at start-up. A bad file is a coded INSPECTOR_CONFIG_INVALID error that
 * names the offending paths.
 */
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigInvalidError } from '../core/errors.js';

const Restart = Type.Object({
  initialDelayMs: Type.Integer({ minimum: 10, default: 200 }),
  maxDelayMs: Type.Integer({ minimum: 10, default: 5000 }),
}, { default: {} });

export const StationConfig = Type.Object({
  station: Type.Object({
    name: Type.String({ default: 'station-1' }),
    /** the verdict budget in ms; verdicts slower than this are counted as over budget */
    budgetMs: Type.Number({ exclusiveMinimum: 0, default: 5 }),
    /** defect classes QA may label, added to the live model's own (served at /api/classes) */
    defectClasses: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { default: [] }),
    /**
     * nice of the hot path's threads (main: part loop + PLC write; capture; live inference), the other
     * workers staying at the process's base (core/thread-priority.ts). null: threads inherit as they are.
     * Negative values need CAP_SYS_NICE or the systemd unit's LimitNICE=; without them a warning, nothing else.
     */
    hotPathNice: Type.Union([Type.Integer({ minimum: -20, maximum: 19 }), Type.Null()], { default: null }),
  }, { default: {} }),
  camera: Type.Object({
    /** replay-triggered: the line's PLC triggers the camera with each part's id (the default; see inspector/plc/README.md) */
    template: Type.Union([Type.Literal('replay-triggered'), Type.Literal('replay'), Type.Literal('testsrc'), Type.Literal('v4l2'),
      Type.Literal('gige'), Type.Literal('rtsp')], { default: 'replay-triggered' }),
    /**
     * How the station learns each part's id (station/part-identity.ts). 'trigger': from the line's
     * trigger telegram (triggered templates only). 'frame-count': the camera is triggered by the PLC's
     * photo-eye, one frame per part, and the station counts frames from the PLC's LastPartId read at
     * every (re)connect; free-running templates are refused unless this is set explicitly.
     */
    partIds: Type.Optional(Type.Union([Type.Literal('trigger'), Type.Literal('frame-count')])),
    /** replay-triggered: UDP port on 127.0.0.1 the PLC's trigger telegrams arrive on */
    triggerPort: Type.Integer({ minimum: 1, maximum: 65535, default: 4842 }),
    width: Type.Integer({ minimum: 16, default: 1280 }),
    height: Type.Integer({ minimum: 16, default: 1024 }),
    rate: Type.Number({ exclusiveMinimum: 0, default: 20, description: 'parts per second (replay, testsrc)' }),
    folder: Type.String({ default: 'test-images/test/parts' }),
    cacheDir: Type.String({ default: 'var/replay-cache' }),
    device: Type.Optional(Type.String()),
    ip: Type.Optional(Type.String()),
    url: Type.Optional(Type.String()),
    photoEyePort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    restart: Restart,
    firstFrameTimeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
    stallTimeoutMs: Type.Integer({ minimum: 100, default: 2_000 }),
  }, { default: {} }),
  model: Type.Object({
    packageDir: Type.String({ default: 'models/default/1.0.0' }),
    providers: Type.Array(Type.Union([Type.Literal('tensorrt'), Type.Literal('cuda'), Type.Literal('webgpu'), Type.Literal('cpu')]),
      { minItems: 1, default: ['tensorrt', 'cuda', 'cpu'] }),
    intraOpNumThreads: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
    warmupRuns: Type.Integer({ minimum: 1, default: 20 }),
    /**
     * A part whose inference has not answered after this long is a fail-safe reject (code 5,
     * INFERENCE_TIMEOUT) and the worker is restarted: a hung session must not stall the line.
     */
    deadlineMs: Type.Integer({ minimum: 10, default: 1000 }),
    /**
     * With 'tensorrt' among the providers: the engine of each model is built when its runner starts
     * (station start, validation before a promotion) and cached here by model sha256, GPU and
     * TensorRT version (inference/trt-engine-cache.ts), so no engine is ever built on the running line.
     */
    trtEngineCacheDir: Type.String({ default: 'var/trt-engines' }),
  }, { default: {} }),
  plc: Type.Object({
    endpoint: Type.String({ default: 'opc.tcp://127.0.0.1:4840' }),
    nodeIds: Type.Optional(Type.Object({
      partId: Type.String(), pass: Type.String(), code: Type.String(), score: Type.String(), heartbeat: Type.String(),
      /** the result's Epoch tag (default: the simulator's Inspection.Result.Epoch) */
      epoch: Type.Optional(Type.String()),
      /** the station's Ready bit the PLC interlocks on (default: the simulator's Station.Ready) */
      ready: Type.Optional(Type.String()),
    })),
    heartbeatMs: Type.Integer({ minimum: 50, default: 500 }),
    /** how often the gate outcomes are read back from the PLC (station/plc-outcomes.ts), off the hot path; at most 5 s:
     * the PLC keeps the newest 4096 outcomes, 13.6 s of a 300 parts/s line */
    outcomesIntervalMs: Type.Integer({ minimum: 50, maximum: 5000, default: 250 }),
    reconnect: Restart,
    /**
     * The station's PKI: its application certificate (own/, made at the first start and kept) and the PLC
     * certificates it trusts (trusted/) or refused (rejected/): `inspector pki list | trust | reject`.
     */
    certificateFolder: Type.String({ default: 'var/pki/station' }),
    /**
     * OPC UA security (plc/plc-security.ts). 'auto': the most secure endpoint the PLC offers
     * (SignAndEncrypt before Sign; Aes256_Sha256_RsaPss, Basic256Sha256, Aes128_Sha256_RsaOaep), never None.
     * None only when mode says "None" (then /health says so). The PLC's certificate must be trusted explicitly.
     */
    security: Type.Object({
      mode: Type.Union([Type.Literal('auto'), Type.Literal('None'), Type.Literal('Sign'), Type.Literal('SignAndEncrypt')], { default: 'auto' }),
      policy: Type.Union([Type.Literal('auto'), Type.Literal('Basic256Sha256'), Type.Literal('Aes128_Sha256_RsaOaep'),
        Type.Literal('Aes256_Sha256_RsaPss')], { default: 'auto' }),
    }, { default: {} }),
    /**
     * The user towards the PLC: "anonymous", { userName, password | passwordFile } or { certificateFile, privateKeyFile }
     * (X.509, PEM). Prefer passwordFile: the config is stored with every run (a password there is redacted).
     */
    user: Type.Union([
      Type.Literal('anonymous'),
      Type.Object({ userName: Type.String({ minLength: 1 }), password: Type.Optional(Type.String()), passwordFile: Type.Optional(Type.String()) },
        { additionalProperties: false }),
      Type.Object({ certificateFile: Type.String({ minLength: 1 }), privateKeyFile: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    ], { default: 'anonymous' }),
  }, { default: {} }),
  results: Type.Object({
    dbPath: Type.String({ default: 'var/results.sqlite' }),
    imagesDir: Type.String({ default: 'var' }),
    imageSlots: Type.Integer({ minimum: 1, default: 8 }),
    /** which part images go to disk: all, rejects plus a sample of passes, or none */
    saveImages: Type.Union([Type.Literal('all'), Type.Literal('rejects'), Type.Literal('none')], { default: 'rejects' }),
    /** with saveImages=rejects: also keep every Nth pass and passes within `doubtMargin` of the threshold */
    passSampleEvery: Type.Integer({ minimum: 1, default: 50 }),
    doubtMargin: Type.Number({ minimum: 0, maximum: 1, default: 0.15 }),
    /** zlib level of saved PNGs: 0 costs ~4 ms of CPU per 1280x1024 frame, 1 ~15 ms, 6 ~26 ms (2-core VM) */
    pngCompressionLevel: Type.Integer({ minimum: 0, maximum: 9, default: 0 }),
  }, { default: {} }),
  server: Type.Object({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    enabled: Type.Boolean({ default: true }),
    /** the session cookie's Secure flag when tls.mode is 'off' (browsers accept it on http://localhost only); always Secure over HTTPS */
    secureCookies: Type.Boolean({ default: true }),
    /**
     * HTTPS (server/tls.ts). 'self-signed' (default): made at the first start, kept in `dir` (default
     * <plc.certificateFolder>/https), its SHA-256 fingerprint logged for pinning; 'files': `cert` + `key`
     * PEM files from the plant's CA; 'off': plain HTTP, only when said here (/health says so).
     */
    tls: Type.Object({
      mode: Type.Union([Type.Literal('self-signed'), Type.Literal('files'), Type.Literal('off')], { default: 'self-signed' }),
      cert: Type.Optional(Type.String({ minLength: 1 })),
      key: Type.Optional(Type.String({ minLength: 1 })),
      dir: Type.Optional(Type.String({ minLength: 1 })),
    }, { default: {}, additionalProperties: false }),
  }, { default: {} }),
  /** camera calibration (calibration/): the versioned calibration folder and how the station uses it */
  calibration: Type.Object({
    dir: Type.String({ default: 'var/calibration' }),
    /** undistort frames with the lens calibration (folded into the binning step) */
    undistort: Type.Boolean({ default: true }),
    /** focus/exposure checks on one frame every N ms in the capture worker (0: off) */
    checkIntervalMs: Type.Integer({ minimum: 0, default: 1000 }),
  }, { default: {} }),
  /** model registry and lifecycle (inspector/registry/) */
  registry: Type.Object({
    /** packages live in <root>/<name>/<version>/ */
    root: Type.String({ default: 'models' }),
    /** live/shadow/previous pointers and the change history (JSON, written atomically) */
    statePath: Type.String({ default: 'var/registry-state.json' }),
    /** the golden set: labelled images (ground-truth.json + files) a candidate must score well on */
    goldenDir: Type.String({ default: 'test-images/test' }),
    /** how many golden images to use (class-balanced subset) */
    goldenImages: Type.Integer({ minimum: 2, default: 40 }),
    /** a candidate may be at most this much less accurate than the live model (0.02 = 2 points) */
    accuracyMargin: Type.Number({ minimum: 0, maximum: 1, default: 0.02 }),
    /**
     * The validation gate's latency check (registry/validation-gate.ts): a candidate's P99 must be within this
     * absolute budget (ms; generous: half a typical 100 ms gate window) AND within the live model's P99, measured
     * in the same run, x (1 + latencyMargin) + latencySlackMs. The relative limit is what catches a slower model
     * on a busy machine, where any fixed figure would refuse even an unchanged copy of the live model.
     */
    latencyBudgetMs: Type.Number({ exclusiveMinimum: 0, default: 50 }),
    latencyMargin: Type.Number({ minimum: 0, default: 0.5 }),
    latencySlackMs: Type.Number({ minimum: 0, default: 2 }),
    /** warm-up frames (golden images, cycled) the candidate's P99 is measured on */
    warmupFrames: Type.Integer({ minimum: 1, default: 100 }),
    /** ed25519 public keys model packages may be signed with: PEM text, or the path of a PEM file (registry/signing.ts) */
    trustedKeys: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** refuse unsigned packages on push, promote, validate and shadow; default true for a config file, else false */
    requireSignatures: Type.Optional(Type.Boolean()),
  }, { default: {} }),
  /** image retention (inspector/retention): labelled and exported images are never deleted */
  retention: Type.Object({
    enabled: Type.Boolean({ default: true }),
    /** disk budget for <imagesDir>/images + exports, in bytes */
    budgetBytes: Type.Integer({ minimum: 0, default: 20 * 1024 ** 3 }),
    /** unlabelled rejects are kept this many days */
    rejectDays: Type.Number({ minimum: 0, default: 30 }),
    /** unlabelled passes are all kept this many days, then only a sample */
    passDays: Type.Number({ minimum: 0, default: 1 }),
    /** the pass sample: keep one saved pass in N (stable hash of runId:seq) */
    passKeepEvery: Type.Integer({ minimum: 1, default: 10 }),
    /** the longest time between passes (the first runs one interval after start, or sooner when the disk fills) */
    intervalMs: Type.Integer({ minimum: 1000, default: 15 * 60_000 }),
    /**
     * Write-rate pacing (retention/disk-pacer.ts): every checkIntervalMs the station measures the images' growth and the
     * file system's free space; a pass runs (at most one per minIntervalMs) as soon as the use projected over the next
     * checks would reach highWaterRatio x budget or the free space would fall under freeFloorBytes, and deletes down to
     * lowWaterRatio x budget. DISK_LOW is raised at highWaterRatio (or under the floor) and cleared under clearRatio
     * (and 10 % above the floor): hysteresis, no flapping.
     */
    checkIntervalMs: Type.Integer({ minimum: 100, default: 5000 }),
    minIntervalMs: Type.Integer({ minimum: 0, default: 30_000 }),
    highWaterRatio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.9 }),
    clearRatio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.85 }),
    lowWaterRatio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.8 }),
    freeFloorBytes: Type.Integer({ minimum: 0, default: 2 * 1024 ** 3 }),
  }, { default: {} }),
  /** results and station state over MQTT Sparkplug B, in its own worker (inspector/mqtt/README.md) */
  mqtt: Type.Object({
    enabled: Type.Boolean({ default: false }),
    url: Type.String({ default: 'mqtt://127.0.0.1:1883' }),
    /** Sparkplug ids: no '/', '+' or '#' */
    groupId: Type.String({ default: 'inspector', pattern: '^[^/+#]+$' }),
    /** default: station.name */
    edgeNodeId: Type.Optional(Type.String({ pattern: '^[^/+#]+$' })),
    deviceId: Type.String({ default: 'inspection', pattern: '^[^/+#]+$' }),
    /** Sparkplug 3.0 primary host application: birth (and publish) only while its STATE is online */
    primaryHostId: Type.Optional(Type.String({ pattern: '^[^/+#]+$' })),
    username: Type.Optional(Type.String()),
    /** the password in a file (never in this config: it is stored with every run) */
    passwordFile: Type.Optional(Type.String()),
    /** results waiting for the broker beyond this are skipped, oldest first, and counted (inspector_mqtt_dropped_total) */
    maxBacklog: Type.Integer({ minimum: 1, default: 1_000_000 }),
    batchMaxParts: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
    /** unacknowledged QoS 1 messages at a time */
    maxInFlight: Type.Integer({ minimum: 1, maximum: 1000, default: 16 }),
    pollMs: Type.Integer({ minimum: 10, default: 100 }),
    statsMs: Type.Integer({ minimum: 50, default: 1000 }),
    /** a row the gate outcome made first ('not_seen') is published once its outcome is this old (its record may still come) */
    notSeenHoldMs: Type.Integer({ minimum: 0, default: 2000 }),
    connectTimeoutMs: Type.Integer({ minimum: 100, default: 5000 }),
    keepaliveS: Type.Integer({ minimum: 1, default: 10 }),
    closeDrainMs: Type.Integer({ minimum: 0, default: 2000 }),
    reconnect: Type.Object({
      initialDelayMs: Type.Integer({ minimum: 10, default: 500 }),
      maxDelayMs: Type.Integer({ minimum: 10, default: 10_000 }),
    }, { default: {} }),
    /** the cursor (last acknowledged result), drop count and bdSeq; default: mqtt-edge-node.json beside results.dbPath */
    statePath: Type.Optional(Type.String()),
  }, { default: {} }),
  /**
   * The station as an OPC 40100 (Machine Vision) server, in its own worker (inspector/vision-server/README.md).
   * Security as on the PLC link: SignAndEncrypt / Sign with the listed policies, None only when listed here;
   * client certificates are trusted explicitly (its certificateFolder's trusted/; never automatically).
   */
  visionServer: Type.Object({
    enabled: Type.Boolean({ default: false }),
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 4843 }),
    certificateFolder: Type.String({ default: 'var/pki/vision-server' }),
    securityModes: Type.Array(Type.Union([Type.Literal('None'), Type.Literal('Sign'), Type.Literal('SignAndEncrypt')]),
      { minItems: 1, default: ['SignAndEncrypt'] }),
    securityPolicies: Type.Array(Type.Union([Type.Literal('Basic256Sha256'), Type.Literal('Aes128_Sha256_RsaOaep'), Type.Literal('Aes256_Sha256_RsaPss')]),
      { default: ['Aes256_Sha256_RsaPss', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep'] }),
    allowAnonymous: Type.Boolean({ default: false }),
    /** user name + password (prefer passwordFile: the config is stored with every run) */
    users: Type.Array(Type.Object({ userName: Type.String({ minLength: 1 }), password: Type.Optional(Type.String()), passwordFile: Type.Optional(Type.String()) },
      { additionalProperties: false }), { default: [] }),
    /** false: the station starts Preoperational and inspects nothing (fail-safe rejects) until a client calls SelectModeAutomatic + StartContinuous */
    startInspecting: Type.Boolean({ default: true }),
    /** how often the worker reads new result rows (one ResultReadyEvent per row) */
    pollMs: Type.Integer({ minimum: 10, default: 50 }),
  }, { default: {} }),
});

export type StationConfig = Static<typeof StationConfig>;

/** Deep-merge plain objects (later wins); arrays are replaced. */
function merge(a: unknown, b: unknown): unknown {
  if (b === undefined) return a;
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return b;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Build a validated config from defaults, an optional JSON file, and overrides. */
export function resolveConfig(overrides: DeepPartial<StationConfig> = {}, file?: string): StationConfig {
  let fromFile: unknown = {};
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigInvalidError(`${file}: ${(err as Error).message}`);
    }
  }
  const merged = merge(merge({}, fromFile), overrides);
  const withDefaults = Value.Default(StationConfig, Value.Clone(merged));
  if (!Value.Check(StationConfig, withDefaults)) {
    const errs = [...Value.Errors(StationConfig, withDefaults)].slice(0, 5)
      .map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
    throw new ConfigInvalidError(errs);
  }
  const config = withDefaults as StationConfig;
  if (file !== undefined) config.registry.requireSignatures ??= true; // a station run from a file requires signed models
  partIdMode(config); // refuses a camera whose parts cannot be identified
  return config;
}

/** Templates whose frames carry the line's part ids (pipelines/*.json with "trigger": true). */
const TRIGGERED_TEMPLATES: ReadonlySet<string> = new Set(['replay-triggered']);

/**
 * How this station identifies parts. A free-running camera (replay, testsrc, v4l2, gige, rtsp)
 * numbers frames on its own clock: tying those numbers to the PLC's parts needs the config to say
 * so ('frame-count'), else a PLC-linked station would judge one part and report another.
 */
export function partIdMode(config: StationConfig): 'trigger' | 'frame-count' {
  const { template, partIds } = config.camera;
  const triggered = TRIGGERED_TEMPLATES.has(template);
  if (triggered && partIds !== 'frame-count') return 'trigger';
  if (!triggered && partIds === 'frame-count') return 'frame-count';
  if (triggered) return 'frame-count';
  throw new ConfigInvalidError(partIds === 'trigger'
    ? `/camera/partIds: the ${template} template has no trigger ids; use replay-triggered, or partIds "frame-count"`
    : `/camera/template: ${template} is free-running: a PLC-linked station must say how parts are identified`
      + ' (camera.partIds "frame-count": the camera is triggered by the PLC\'s photo-eye, one frame per part), or use replay-triggered');
}
