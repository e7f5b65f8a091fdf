/** Small coloured state badges used on every page. */
import type { ComponentChildren } from 'preact';

export function StatusPill({ state, label, title, children }: { state: 'up' | 'degraded' | 'down' | 'unknown'; label: string; title?: string; children?: ComponentChildren }) {
  return (
    <span class={`pill pill-${state}`} title={title} data-testid={`status-${label.toLowerCase()}`}>
      <span class="dot" />{label}{children ? <span class="pill-detail">{children}</span> : null}
    </span>
  );
}

export function VerdictBadge({ verdict }: { verdict: string }) {
  return <span class={`verdict verdict-${verdict}`}>{verdict}</span>;
}

/** Score against the threshold as a bar with a tick at the threshold. */
export function ScoreBar({ score, threshold }: { score: number | null; threshold: number | null | undefined }) {
  const s = score ?? 1;
  const t = threshold ?? null;
  return (
    <span class="scorebar" title={`score ${score === null ? 'n/a' : score.toFixed(3)}${t !== null ? ` / threshold ${t.toFixed(3)}` : ''}`}>
      <span class={`fill ${t !== null && s >= t ? 'over' : 'under'}`} style={{ width: `${Math.min(100, s * 100)}%` }} />
      {t !== null ? <span class="tick" style={{ left: `${t * 100}%` }} /> : null}
      <span class="num">{score === null ? 'n/a' : score.toFixed(3)}</span>
    </span>
  );
}
