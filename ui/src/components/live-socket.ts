/**
 * The live WebSocket (`/api/live`): parts as they are decided, rolling stats and
 * health. Reconnects with backoff; the last 120 stats samples are kept for the
 * sparkline, the last 60 parts for the strip.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Health, LiveMessage, LivePart } from '../api.js';

export interface LiveStats { atMs: number; partsPerSec: number; rejectRate: number | null; p50Ms: number | null; p99Ms: number | null }
/** The operator's panel (server: inspector/server/live-feed.ts OperatorStatus, GET /api/live/status). */
export interface DiskStatus {
  imagesBytes: number | null; budgetBytes: number; highWaterBytes: number; lowWaterBytes: number;
  freeBytes: number | null; totalBytes: number | null; freeFloorBytes: number; writeBytesPerSec: number;
  low: boolean; lowReason: 'budget' | 'free-space' | null; lastPassAt: number | null; nextPassInMs: number | null;
}
export interface OperatorStatus {
  disk: DiskStatus | null;
  images: { offered: number; written: number; dropped: number; failed: number };
  plc: Record<string, number | boolean> | null;
  ready: boolean;
  lastRejects: LivePart[];
}
export interface LiveState { connected: boolean; parts: LivePart[]; stats: LiveStats[]; health: Health | null; error: string | null; savedSeq: number;
  operator: OperatorStatus | null }

export function useLive(): LiveState {
  const [state, setState] = useState<LiveState>({ connected: false, parts: [], stats: [], health: null, error: null, savedSeq: 0, operator: null });
  useEffect(() => {
    let ws: WebSocket | null = null;
    let stopped = false;
    let delay = 500;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const connect = (): void => {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live`);
      ws.onopen = () => { delay = 500; setState((s) => ({ ...s, connected: true, error: null })); };
      ws.onmessage = (ev) => {
        let m: LiveMessage | { type: 'operator'; status: OperatorStatus };
        try { m = JSON.parse(String(ev.data)) as typeof m; } catch { return; }
        setState((s) => {
          if (m.type === 'parts') {
            const seen = new Set(m.items.map((p) => `${p.runId}/${p.seq}`));
            const saved = m.items.filter((p) => p.imageSaved).reduce((a, p) => Math.max(a, p.seq), s.savedSeq);
            return { ...s, savedSeq: saved, parts: [...m.items.slice().reverse(), ...s.parts.filter((p) => !seen.has(`${p.runId}/${p.seq}`))].slice(0, 60) };
          }
          if (m.type === 'stats') {
            const { partsPerSec, rejectRate, p50Ms, p99Ms } = m;
            return { ...s, stats: [...s.stats, { atMs: Date.now(), partsPerSec, rejectRate, p50Ms, p99Ms }].slice(-120) };
          }
          if (m.type === 'health') return { ...s, health: m.report };
          if (m.type === 'operator') return { ...s, operator: m.status };
          return s;
        });
      };
      ws.onclose = () => {
        setState((s) => ({ ...s, connected: false }));
        if (stopped) return;
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10_000);
      };
      ws.onerror = () => setState((s) => ({ ...s, error: 'live connection lost; reconnecting' }));
    };
    connect();
    return () => { stopped = true; if (timer) clearTimeout(timer); ws?.close(); };
  }, []);
  return state;
}
