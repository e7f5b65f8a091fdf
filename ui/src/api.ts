/**
 * A small typed client for the station's HTTP API (contract: .cache/HELPERS.md,
 * "HTTP server"). Every call goes through `request()`: JSON in and out, the
 * session cookie rides along, and a non-2xx answer becomes an ApiError that
 * carries the server's coded error (`INSPECTOR_…`).
 */

export type Role = 'operator' | 'qa' | 'ml' | 'admin';
export interface User { name: string; role: Role }

export type Verdict = 'pass' | 'reject';
export type LabelVerdict = 'true_defect' | 'false_reject' | 'unsure';

export interface BoxRegion { id: string; kind: 'box'; x: number; y: number; w: number; h: number }
export interface PolygonRegion { id: string; kind: 'polygon'; points: Array<[number, number]> }
export type Region = BoxRegion | PolygonRegion;

export interface Label {
  verdict: LabelVerdict;
  defectClass?: string | null;
  regions: Region[];
  revision: number;
  /** who saved this revision, and when (ISO) */
  by?: string;
  at?: string;
}

/** One inspected part as the review queue and the label page see it. */
export interface Part {
  runId: string;
  seq: number;
  capturedAtMs: number;
  verdict: Verdict;
  code: number;
  score: number | null;
  threshold?: number | null;
  /** defectClass: the model's class of the verdict (the QA label's class is label.defectClass) */
  model: { name: string; version: string; defectClass?: string | null };
  provider?: string;
  frameToVerdictMs?: number | null;
  hasImage: boolean;
  hasMap: boolean;
  doubtful?: boolean;
  /** reviewed by the logged-in user */
  reviewed?: boolean;
  label?: Label | null;
}

/** `threshold` and `doubtMargin` are the live model's, which the queue's doubtful test uses. */
export interface PartPage { items: Part[]; nextCursor: string | null; threshold?: number; doubtMargin?: number }

/** No verdict/doubtful: rejects plus doubtful passes; verdict=reject: rejects; doubtful=true: doubtful passes only. */
export interface PartFilter {
  from?: number; to?: number; verdict?: Verdict | ''; class?: string; model?: string;
  reviewed?: 'true' | 'false' | ''; doubtful?: 'true' | ''; limit?: number; cursor?: string | null;
}

export interface LabelPut { verdict: LabelVerdict; defectClass?: string; regions: Region[]; revision: number }

export interface HealthComponent { state: 'up' | 'degraded' | 'down'; detail?: string }
/** Station vs PLC (health's plc.line; server schema LineReport in inspector/server/station-view.ts). */
export interface LineCounts {
  /** the PLC's counters of its current epoch; null before the station's first read */
  plc: {
    epoch: number; lastPartId: number; parts: number; accepted: number; rejected: number; timeout: number;
    late: number; sequenceErrors: number; refused: number; duplicates: number;
  } | null;
  station: { inspected: number; notInspected: Record<string, number>; partSyncErrors: number };
  readBack: { reads: number; readErrors: number; mismatches: number; refusals: number; missed: number };
}
export interface Health {
  status: 'up' | 'degraded' | 'down';
  station: string; uptimeS: number; parts: number;
  camera: HealthComponent & { frames: number; dropped: number; restarts: number; errors: number };
  model: HealthComponent & { name: string; version: string; provider: string };
  /** state: down when the link is not connected, degraded while PART_SYNC is raised, else up */
  plc: HealthComponent & { endpoint: string; writes: number; writeErrors: number; reconnects: number; line?: LineCounts };
  alarms: string[];
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly body: unknown = null) {
    super(message);
  }
  /** no answer at all (network down, server gone) */
  get offline(): boolean { return this.status === 0; }
}

type Query = Record<string, string | number | boolean | null | undefined>;

export function qs(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function request<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      ...init,
    });
  } catch (err) {
    throw new ApiError(0, 'INSPECTOR_OFFLINE', `no answer from the station (${(err as Error).message})`);
  }
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const e = (data && typeof data === 'object' ? data : {}) as { code?: string; message?: string };
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText, data);
  }
  return data as T;
}

const enc = encodeURIComponent;
let thresholdCache: Promise<number | null> | null = null;
export const partPath = (runId: string, seq: number): string => `/api/parts/${enc(runId)}/${seq}`;
export const imageUrl = (p: Pick<Part, 'runId' | 'seq'>): string => `${partPath(p.runId, p.seq)}/image`;
export const labelHrefFor = (runId: string, seq: number): string => `#/label/${enc(runId)}/${seq}`;
export const mapUrl = (p: Pick<Part, 'runId' | 'seq'>): string => `${partPath(p.runId, p.seq)}/map`;

/** Accepts `string[]`, `{classes: string[]}` or `{classes: {name}[]}`. */
function classNames(raw: unknown): string[] {
  const list = Array.isArray(raw) ? raw : (raw as { classes?: unknown[] } | null)?.classes ?? [];
  return list.map((c) => (typeof c === 'string' ? c : String((c as { name?: string }).name ?? ''))).filter(Boolean);
}

export const api = {
  me: () => request<{ user: User | null } | User>('GET', '/api/auth/me')
    .then((r) => ('user' in r ? r.user : (r as User))),
  login: (username: string, password: string) => request<{ user: User } | User>('POST', '/api/auth/login', { username, password })
    .then((r) => ('user' in r ? r.user : (r as User))),
  logout: () => request<unknown>('POST', '/api/auth/logout', {}),
  health: () => request<Health>('GET', '/health').catch((e: ApiError) => {
    if (e.status === 503 && e.body && typeof e.body === 'object') return e.body as Health; // degraded still reports
    throw e;
  }),
  classes: () => request<unknown>('GET', '/api/classes').then(classNames),
  parts: (f: PartFilter) => request<PartPage>('GET', `/api/parts${qs(f as Query)}`),
  part: (runId: string, seq: number) => request<Part>('GET', partPath(runId, seq)),
  /** the live model's decision threshold (the queue answers it alongside its items), cached */
  threshold: (): Promise<number | null> => (thresholdCache ??= request<PartPage>('GET', '/api/parts?limit=1')
    .then((r) => r.threshold ?? null, () => { thresholdCache = null; return null; })),
  putLabel: (runId: string, seq: number, body: LabelPut) =>
    request<{ label: Label; changed: boolean }>('PUT', `${partPath(runId, seq)}/label`, body).then((r) => r.label),
  labelHistory: (runId: string, seq: number) => request<unknown>('GET', `${partPath(runId, seq)}/label/history`),
  markReviewed: (items: Array<{ runId: string; seq: number }>, reviewed: boolean) =>
    request<unknown>('POST', '/api/review/reviewed', { items, reviewed }),
  labelBulk: (items: Array<{ runId: string; seq: number }>, verdict: LabelVerdict) =>
    request<unknown>('POST', '/api/review/label-bulk', { items, verdict }),
  stats: (from: number, to: number) => request<Stats>('GET', `/api/stats${qs({ from, to })}`),
  models: () => request<ModelList>('GET', '/api/models'),
  shadowReport: () => request<ShadowReport>('GET', '/api/models/shadow/report'),
  modelAction: (path: string, method: 'POST' | 'DELETE' = 'POST') => request<unknown>(method, path, method === 'POST' ? {} : undefined),
  createExport: (format: ExportJob['format'], filter: ExportFilter = {}) =>
    request<{ id: string }>('POST', '/api/exports', { format, filter }),
  exportStatus: (id: string) => request<ExportJob>('GET', `/api/exports/${enc(id)}`),
  exports: () => request<ExportJob[]>('GET', '/api/exports?limit=10'),
};

/** GET /api/exports/:id (inspector/server/routes/exports.ts). */
export interface ExportJob {
  id: string; format: 'mvtec' | 'coco' | 'yolo'; filter: ExportFilter; actor: string; path: string;
  status: 'running' | 'done' | 'failed';
  progress: { phase: 'select' | 'write' | 'hash' | 'done'; done: number; total: number };
  createdAt: string; finishedAt: string | null;
  counts: { images: number; good: number; defect: Record<string, number>; annotations: number; excludedUnsure: number; skippedUnlabelledRejects: number } | null;
  error: { code: string; message: string } | null;
}
export interface ExportFilter {
  from?: number; to?: number; verdict?: Verdict; label?: 'true_defect' | 'false_reject'; classes?: string[];
  modelName?: string; modelVersion?: string; runId?: string; labelledOnly?: boolean;
}
/** The file of a finished export that holds the annotations, per format. */
export const EXPORT_MAIN_FILE: Record<ExportJob['format'], string> = { coco: 'annotations.json', yolo: 'data.yaml', mvtec: 'manifest.json' };
export const exportFileUrl = (id: string, file: string): string => `/api/exports/${encodeURIComponent(id)}/file/${file}`;

/** /api/stats (inspector/review/stats.ts). */
export interface Stats {
  from: string; to: string;
  totals: { parts: number; passes: number; rejects: number; yield: number | null; rejectRate: number | null };
  hours: Array<{
    hour: string; hourMs: number; parts: number; passes: number; rejects: number; yield: number | null; rejectRate: number | null;
    latency: { count: number; p50: number | null; p90: number | null; p99: number | null; max: number | null; mean: number | null };
  }>;
  rejectsByCode: Array<{ code: number; count: number }>;
  /** QA's view: parts labelled true_defect, by the label's class */
  rejectsByClass: Array<{ defectClass: string; count: number }>;
  /** the model's view: rejects by the model's class of the verdict ('(unclassified)' where it has none) */
  rejectsByModelClass: Array<{ defectClass: string; count: number }>;
  /** upper bucket edges in ms; null is the open last bucket */
  latencyHistogram: Array<{ leMs: number | null; count: number }>;
  agreement: {
    labelledRejects: number; falseRejects: number; falseRejectRate: number | null;
    labelledPasses: number; escapesFound: number; escapeRate: number | null;
    agreeing: number; labelled: number; agreement: number | null; unsure: number;
  };
}

/** A part as the live WebSocket announces it (inspector/server/live-feed.ts). */
export interface LivePart {
  runId: string; seq: number; verdict: Verdict; code: number; score: number | null;
  frameToVerdictMs: number; modelVersion: string; imageSaved: boolean; at: number;
  /** the model's defect class of the verdict; null on a pass (older servers leave it out) */
  defectClass?: string | null;
}
/** The model registry (inspector/server/routes/models.ts). */
export interface ModelRef { name: string; version: string }
export interface ModelItem extends ModelRef {
  live: boolean; shadow: boolean; previous: number; kind: string | null; threshold: number | null;
  description: string | null; problem?: string;
}
export interface ModelList { models: ModelItem[]; live: ModelRef | null; shadow: ModelRef | null; previous: ModelRef[] }
export interface ShadowReport {
  shadow: ModelRef | null; live: ModelRef | null; since: string | null; stats: Record<string, number> | null;
  compared: number; agree: number; disagree: number; shadowRejectsLivePasses: number; shadowPassesLiveRejects: number;
  disagreements: Array<{ run_id: string; seq: number; score: number | null; verdict: string; live_model_version: string; live_score: number | null; live_verdict: string }>;
}
/** The validation a promotion runs (a refusal is a 422 with the reasons). */
export interface ValidationReport { model: ModelRef; ok: boolean; provider: string | null; checks: Array<{ check: string; ok: boolean; detail: string }>; reasons: string[] }

/** The live WebSocket's messages. */
export type LiveMessage =
  | { type: 'parts'; items: LivePart[] }
  | { type: 'stats'; partsPerSec: number; rejectRate: number | null; p50Ms: number | null; p99Ms: number | null; parts: number }
  | { type: 'health'; report: Health };

export const RESULT_CODES: Record<number, string> = {
  0: 'PASS', 1: 'DEFECT', 2: 'INFERENCE_ERROR', 3: 'OVER_BUDGET', 4: 'UNREGISTRABLE',
};

export const LABEL_NAMES: Record<LabelVerdict, string> = {
  true_defect: 'true defect', false_reject: 'false reject', unsure: 'unsure',
};

/** The calibration API (inspector/server/routes/calibration.ts; calibration/calibration-file.ts). */
export interface CalPoint { x: number; y: number }
export interface CalBoard { cols: number; rows: number; squareMm: number }
export interface CalRoi { x: number; y: number; width: number; height: number }
export interface CalBands { sharpnessDropMax: number; meanDeltaMax: number; saturatedMax: number }
export interface CalDoc {
  schema: 1; station: string; version: number; createdAt: string; createdBy: string; note?: string;
  frame: { width: number; height: number };
  lens?: { camera: { fx: number; fy: number; cx: number; cy: number; dist: [number, number, number, number, number] };
    imageSize: { width: number; height: number }; board: CalBoard; rms: number; views: number; distinctViews: number };
  plane?: { homography: number[]; undistorted: boolean; source: 'board' | 'points'; mmPerPx: number; mmPerPxX: number; mmPerPxY: number;
    residualMm: number; imagePoints: CalPoint[]; planePoints: CalPoint[] };
  roi?: CalRoi;
  checks?: { reference: { tenengrad: number; laplacianVar: number; mean: number; saturatedFraction: number; darkFraction: number }; bands: CalBands };
  golden?: { reference: string; note?: string };
}
export interface CalVersion { version: number; createdAt: string; createdBy: string; note?: string; sections: string[]; current: boolean }
export interface CalLensResult { version: number; rms: number; used: number; distinct: number;
  views: Array<{ name: string; found: boolean; rms: number | null; corners: CalPoint[] | null }> }
export interface CalPlaneResult { version: number; mmPerPx: number; mmPerPxX: number; mmPerPxY: number; residualMm: number; undistorted: boolean }
export interface ImageChecks { tenengrad: number; laplacianVar: number; mean: number; p01: number; p99: number;
  saturatedFraction: number; darkFraction: number; histogram: number[]; samples: number }
export interface LiveCheck { checks: ImageChecks; reference: { tenengrad: number; mean: number; saturatedFraction: number } | null; bands: CalBands;
  focus: { ok: boolean; detail: string }; exposure: { ok: boolean; detail: string }; frame: { width: number; height: number } }

/** POST /api/calibration/reference/check (inspector/server/routes/calibration-reference.ts). */
export interface CalReferenceCheck {
  ok: boolean; dx: number; dy: number; angleDeg: number; quality: number; reason?: string;
  minQuality: number; maxShiftPx: number; maxRotationDeg: number; referenceSize: { width: number; height: number };
  frameShiftPx: { dx: number; dy: number }; shiftMm: { dx: number; dy: number } | null;
  frame: { width: number; height: number; source: 'live' | 'file' };
  model: { name: string; version: string; packageDir: string; reference: string }; ms: number; undistorted: boolean; overlayUrl: string;
}

export const calibrationApi = {
  versions: () => request<CalVersion[]>('GET', '/api/calibration/versions'),
  /** the current version, or null before the first save (asks the list first: no 404 on a fresh station) */
  current: async (): Promise<{ version: number; doc: CalDoc } | null> => {
    const list = await calibrationApi.versions();
    return list.some((v) => v.current) ? request<{ version: number; doc: CalDoc }>('GET', '/api/calibration') : null;
  },
  activate: (version: number) => request<{ version: number; doc: CalDoc }>('POST', '/api/calibration/activate', { version }),
  lens: (imagesDir: string, board: CalBoard) => request<CalLensResult>('POST', '/api/calibration/lens', { imagesDir, board }),
  plane: (points: CalPoint[], mm: CalPoint[]) => request<CalPlaneResult>('POST', '/api/calibration/plane', { points, mm }),
  roi: (roi: CalRoi) => request<{ version: number; doc: CalDoc }>('PUT', '/api/calibration/roi', roi),
  liveCheck: () => request<LiveCheck>('GET', '/api/calibration/live-check'),
  referenceFromLive: (bands?: CalBands) => request<{ version: number; doc: CalDoc }>('POST', '/api/calibration/checks/reference-live', bands ? { bands } : {}),
  /** the newest frame registered to the live model's golden reference (or a package folder's on the station) */
  referenceCheck: (o: { packageDir?: string; imagePath?: string } = {}) => request<CalReferenceCheck>('POST', '/api/calibration/reference/check', o),
  lensViewUrl: (imagesDir: string, name: string, undistort: boolean) =>
    `/api/calibration/lens/view.png${qs({ imagesDir, name, undistort, width: 640 })}`,
};
