/**
 * Server-worker side of the live feed: keeps the latest stats and health and
 * fans every message out to the WebSocket clients of `/api/live`. A client
 * that cannot keep up (send buffer over 1 MiB) skips messages until it drains.
 */
import type { LiveMessage } from './live-feed.js';

/** The part of a `ws` WebSocket the hub uses (the package ships no types here). */
export interface LiveSocket {
  readonly readyState: number;
  readonly OPEN: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  on(event: 'close' | 'error', fn: () => void): unknown;
}

export class LiveHub {
  private readonly clients = new Set<LiveSocket>();
  latestStats: Extract<LiveMessage, { type: 'stats' }> | null = null;
  latestHealth: Extract<LiveMessage, { type: 'health' }> | null = null;
  /** the operator's panel (disk, image drops, PLC counters, last rejects), once a second */
  latestOperator: Extract<LiveMessage, { type: 'operator' }> | null = null;
  /** the last parts sent, so a new client sees something at once */
  recentParts: Extract<LiveMessage, { type: 'parts' }>['items'] = [];
  skipped = 0;

  publish(m: LiveMessage): void {
    if (m.type === 'stats') this.latestStats = m;
    else if (m.type === 'health') this.latestHealth = m;
    else if (m.type === 'operator') this.latestOperator = m;
    else this.recentParts = [...this.recentParts, ...m.items].slice(-32);
    if (this.clients.size === 0) return;
    const text = JSON.stringify(m);
    for (const ws of this.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > 1 << 20) { this.skipped++; continue; }
      ws.send(text);
    }
  }

  add(ws: LiveSocket): void {
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => this.clients.delete(ws));
    if (this.recentParts.length) ws.send(JSON.stringify({ type: 'parts', items: this.recentParts }));
    if (this.latestStats) ws.send(JSON.stringify(this.latestStats));
    if (this.latestHealth) ws.send(JSON.stringify(this.latestHealth));
    if (this.latestOperator) ws.send(JSON.stringify(this.latestOperator));
  }

  get size(): number { return this.clients.size; }

  close(): void {
    for (const ws of this.clients) ws.close(1001, 'server closing');
    this.clients.clear();
  }
}
