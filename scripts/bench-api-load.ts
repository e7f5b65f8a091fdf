/**
 * A bounded API load on the review routes, for `npm run bench -- --station-load`
 * (scripts/bench-station-load.ts): what QA people browsing the station do while the line runs.
 *
 * Open loop at a fixed rate: request k is due at t0 + k / rate. A due request that finds
 * `maxInFlight` requests still open is skipped (counted), never queued: a slow server gets
 * fewer requests, not a burst afterwards, so the load stays bounded whatever the station does.
 * The routes rotate: the review queue (/api/parts), a part's detail, its image (or its anomaly
 * map as a heatmap, when the part has one), /api/stats. Parts are picked from the last queue
 * page seen; until one is seen, every request is the queue.
 *
 * The clock and fetch are injectable so that the scheduling and the counting are tested
 * without wall-clock assertions (test/bench-api-load.test.ts).
 */
import { LatencyRecorder } from '../inspector/station/latency-recorder.js';

export type ApiRoute = 'list' | 'detail' | 'image' | 'map' | 'stats';
/** the rotation: 2 of 5 requests read images, as a QA page does (the part's image + its heatmap) */
export const ROUTE_CYCLE: readonly ApiRoute[] = ['list', 'detail', 'image', 'map', 'stats'];

export interface ApiLoadReport {
  rate_per_s: number;
  max_in_flight: number;
  /** requests whose time came (elapsed × rate) */
  due: number;
  sent: number;
  /** due while maxInFlight requests were open: not sent */
  skipped: number;
  /** HTTP status (or 'error' for a request that got no response) → count */
  by_status: Record<string, number>;
  by_route: Partial<Record<ApiRoute, number>>;
  latency_ms: { p50: number; p99: number; max: number };
}

interface PartRef { runId: string; seq: number; hasImage: boolean; hasMap: boolean }

export interface ApiLoadOptions {
  baseUrl: string;
  /** bearer token of a station account */
  token: string;
  rate: number;
  maxInFlight?: number;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
}

export class ApiLoad {
  readonly rate: number;
  readonly maxInFlight: number;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly now: () => number;
  private t0: number | null = null;
  private due = 0;
  private sent = 0;
  private skipped = 0;
  private inFlight = 0;
  private readonly pending = new Set<Promise<void>>();
  private readonly byStatus: Record<string, number> = {};
  private readonly byRoute: Partial<Record<ApiRoute, number>> = {};
  private readonly latency = new LatencyRecorder(1 << 16);
  private parts: PartRef[] = [];
  private pick = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: ApiLoadOptions) {
    if (!(o.rate > 0)) throw new Error('the API load rate must be positive');
    this.rate = o.rate;
    this.maxInFlight = o.maxInFlight ?? 4;
    this.fetchFn = o.fetch ?? globalThis.fetch;
    this.now = o.now ?? (() => performance.now());
  }

  /** requests sent and not yet answered (or failed) */
  get inFlightNow(): number { return this.inFlight; }

  /** Tick on a timer (a few times per request interval, so requests go out close to their time). */
  start(): void {
    this.t0 = this.now();
    this.timer = setInterval(() => this.tick(), Math.max(5, Math.floor(250 / this.rate)));
    this.timer.unref();
  }

  /** Send (or skip) every request that is due by now. */
  tick(): void {
    if (this.stopped) return;
    this.t0 ??= this.now();
    const dueNow = Math.floor(((this.now() - this.t0) * this.rate) / 1000) + 1; // request 0 is due at t0
    while (this.due < dueNow) {
      this.due++;
      if (this.inFlight >= this.maxInFlight) { this.skipped++; continue; }
      this.send(this.nextPath());
    }
  }

  /** Stop sending, wait for the open requests, report. */
  async stop(): Promise<ApiLoadReport> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.pending]);
    const s = this.latency.summary();
    return {
      rate_per_s: this.rate, max_in_flight: this.maxInFlight, due: this.due, sent: this.sent, skipped: this.skipped,
      by_status: { ...this.byStatus }, by_route: { ...this.byRoute }, latency_ms: { p50: s.p50, p99: s.p99, max: s.max },
    };
  }

  /** The route of the next request in the rotation, falling back to the queue while no part is known. */
  private nextPath(): { route: ApiRoute; path: string } {
    const route = ROUTE_CYCLE[this.sent % ROUTE_CYCLE.length]!;
    if (route === 'stats') return { route, path: '/api/stats' };
    if (route === 'list') return { route, path: '/api/parts?limit=50' };
    const parts = route === 'image' ? this.parts.filter((p) => p.hasImage)
      : route === 'map' ? this.parts.filter((p) => p.hasMap)
        : this.parts;
    const part = parts.length > 0 ? parts[this.pick++ % parts.length]! : null;
    if (part === null && route !== 'map') return { route: 'list', path: '/api/parts?limit=50' };
    if (part === null) return this.imageOrList(); // no part has a map (a model without anomaly maps): its image instead
    const base = `/api/parts/${encodeURIComponent(part.runId)}/${part.seq}`;
    if (route === 'detail') return { route, path: base };
    return route === 'image' ? { route, path: `${base}/image` } : { route, path: `${base}/map?width=640` };
  }

  private imageOrList(): { route: ApiRoute; path: string } {
    const withImage = this.parts.filter((p) => p.hasImage);
    const part = withImage.length > 0 ? withImage[this.pick++ % withImage.length]! : null;
    return part ? { route: 'image', path: `/api/parts/${encodeURIComponent(part.runId)}/${part.seq}/image` }
      : { route: 'list', path: '/api/parts?limit=50' };
  }

  private send(req: { route: ApiRoute; path: string }): void {
    this.sent++;
    this.inFlight++;
    this.byRoute[req.route] = (this.byRoute[req.route] ?? 0) + 1;
    const t = this.now();
    const p = (async () => {
      let status = 'error';
      try {
        const res = await this.fetchFn(this.o.baseUrl + req.path, { headers: { authorization: `Bearer ${this.o.token}` } });
        status = String(res.status);
        // the body is read in full: the server's work (and the bytes on loopback) are part of the load
        if (req.route === 'list' && res.ok) this.learnParts(await res.json());
        else await res.arrayBuffer();
        this.latency.record(this.now() - t);
      } catch {
        // no response: counted under 'error', no latency sample
      } finally {
        this.byStatus[status] = (this.byStatus[status] ?? 0) + 1;
        this.inFlight--;
      }
    })();
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private learnParts(body: unknown): void {
    const items = (body as { items?: unknown } | null)?.items;
    if (!Array.isArray(items)) return;
    const parts = items.filter((i): i is PartRef => typeof i?.runId === 'string' && typeof i?.seq === 'number')
      .map((i) => ({ runId: i.runId, seq: i.seq, hasImage: i.hasImage === true, hasMap: i.hasMap === true }));
    if (parts.length > 0) this.parts = parts;
  }
}
