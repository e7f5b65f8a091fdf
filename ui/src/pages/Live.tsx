/**
 * Live: the line as it runs. Parts/s, reject rate and frame→verdict latency
 * from the WebSocket; camera, model and PLC link status with the raised alarms
 * (the PLC is amber while its part ids or outcomes disagree with the
 * station's, PART_SYNC); the PLC's outcome counters beside the station's
 * ("Station vs PLC", health's plc.line);
 * the latest frame, and the latest saved parts with verdict, the model's defect
 * class, score and the anomaly-map overlay; the recent verdicts strip, with the
 * newest reject and its class. The operator's panel, as a smart camera's
 * screen has it (the feed's 'operator' message, server/live-feed.ts): disk use
 * against the retention budget (DISK_LOW at the high-water mark), images the
 * writer dropped (those parts have no image), whether the station told the PLC
 * it is Ready, every PLC outcome counter, and the last rejects linking to the part.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { api, type Health, type LineCounts, type Part } from '../api.js';
import { labelHref } from '../router.js';
import { useKeys } from '../components/keys.js';
import { useLive, type OperatorStatus } from '../components/live-socket.js';
import { Chart } from '../components/Chart.js';
import { ScoreBar, StatusPill, VerdictBadge } from '../components/StatusPill.js';
import { Thumb } from '../components/Thumb.js';

const axis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({ stroke: '#9aa4b1', grid: { stroke: '#2a3038' }, ...extra });

function Kpi({ label, value, unit, testid }: { label: string; value: string; unit?: string; testid: string }) {
  return <div class="kpi" data-testid={testid}><div class="kpi-value">{value}<small>{unit}</small></div><div class="kpi-label">{label}</div></div>;
}

/** A count cell: '–' when unknown; amber when a count that should stay 0 is not. */
function Count({ n, testid, alert = false, title }: { n: number | null | undefined; testid: string; alert?: boolean; title?: string }) {
  return <td class={`num${alert && n ? ' warn' : ''}`} data-testid={testid} title={title}>{n == null ? '–' : String(n)}</td>;
}

/**
 * Station vs PLC: what the station counted and what the PLC's gate did with the same parts
 * (read back from the PLC a few times a second). Sequence errors, refusals and sync errors
 * should stay 0; late results and timeout rejects mean the station was too slow.
 */
function LineTable({ line }: { line: LineCounts | undefined }) {
  const st = line?.station;
  const plc = line?.plc ?? null;
  const notInspected = st ? Object.values(st.notInspected).reduce((a, b) => a + b, 0) : null;
  const reasons = st ? Object.entries(st.notInspected).filter(([, n]) => n > 0).map(([r, n]) => `${r.replace(/_/g, ' ')}: ${n}`).join(', ') : '';
  type Row = { label: string; n: number | null | undefined; testid: string; alert?: boolean; title?: string };
  const station: Row[] = [
    { label: 'inspected', n: st?.inspected, testid: 'line-station-inspected' },
    { label: 'not inspected', n: notInspected, testid: 'line-station-not-inspected', alert: true, title: reasons || undefined },
    { label: 'sync errors', n: st?.partSyncErrors, testid: 'line-station-sync-errors', alert: true, title: 'parts held back: their numbering was not the PLC\'s current one' },
    { label: 'mismatches', n: line?.readBack.mismatches, testid: 'line-station-mismatches', alert: true, title: 'gate outcomes that disagree with what the station sent' },
  ];
  const plcRows: Row[] = [
    { label: 'parts', n: plc?.parts, testid: 'line-plc-parts' },
    { label: 'accepted', n: plc?.accepted, testid: 'line-plc-accepted' },
    { label: 'rejected', n: plc?.rejected, testid: 'line-plc-rejected', title: 'all rejects, timeouts included' },
    { label: 'timeout rejects', n: plc?.timeout, testid: 'line-plc-timeout', alert: true, title: 'no result inside the gate window (fail-safe reject)' },
    { label: 'late', n: plc?.late, testid: 'line-plc-late', alert: true, title: 'results after their part\'s window closed' },
    { label: 'sequence errors', n: plc?.sequenceErrors, testid: 'line-plc-sequence-errors', alert: true, title: 'results whose PartId was not the previous one + 1' },
    { label: 'refused', n: plc?.refused, testid: 'line-plc-refused', alert: true, title: 'results the PLC never applied: wrong epoch or a part it did not trigger' },
  ];
  const cells = (r: Row | undefined) => (r
    ? <><th>{r.label}</th><Count n={r.n} testid={r.testid} alert={r.alert} title={r.title} /></>
    : <><th /><td /></>);
  return (
    <figure class="line-compare">
      <figcaption>Station vs PLC {plc
        ? <span class="muted" data-testid="line-epoch">· epoch {plc.epoch}, last part {plc.lastPartId}</span>
        : line ? <span class="muted">· PLC not read yet</span> : null}</figcaption>
      <table class="line-table" data-testid="line-table">
        <thead><tr><th colSpan={2}>Station</th><th colSpan={2}>PLC</th></tr></thead>
        <tbody>
          {plcRows.map((p, i) => <tr key={p.testid}>{cells(station[i])}{cells(p)}</tr>)}
        </tbody>
      </table>
    </figure>
  );
}

const bytes = (b: number | null | undefined): string => {
  if (b == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b; let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
};

/** Disk, image drops, Ready and the PLC's own outcome counters (Plc.Counters.*, as last read back). */
function OperatorPanel({ op }: { op: OperatorStatus | null }) {
  const d = op?.disk ?? null;
  const plc = op?.plc ?? null;
  const n = (k: string): number | null => (plc && typeof plc[k] === 'number' ? plc[k] as number : null);
  type Row = { label: string; n: number | null; testid: string; alert?: boolean; title?: string };
  const rows: Row[] = [
    { label: 'parts', n: n('Parts'), testid: 'plc-parts' },
    { label: 'accepted', n: n('Accepted'), testid: 'plc-accepted' },
    { label: 'rejected', n: n('Rejected'), testid: 'plc-rejected', title: 'every reject: timeouts and not-ready parts included' },
    { label: 'timeout', n: n('RejectedTimeout'), testid: 'plc-timeout', alert: true, title: 'no result inside the gate window' },
    { label: 'late', n: n('LateResults'), testid: 'plc-late', alert: true, title: 'results after the window closed' },
    { label: 'not ready', n: n('RejectedNotReady'), testid: 'plc-not-ready', alert: true, title: 'parts that came while the station was not Ready' },
    { label: 'orphan', n: n('OrphanResults'), testid: 'plc-orphan', alert: true, title: 'results for a part the PLC did not trigger' },
    { label: 'wrong epoch', n: n('WrongEpochResults'), testid: 'plc-wrong-epoch', alert: true, title: 'results of another numbering epoch' },
    { label: 'duplicates', n: n('DuplicateResults'), testid: 'plc-duplicates', alert: true },
    { label: 'sequence', n: n('SequenceMismatch'), testid: 'plc-sequence', alert: true, title: 'strobes whose PartId was not the previous + 1' },
  ];
  const used = d?.imagesBytes ?? null;
  const pct = used !== null && d && d.budgetBytes > 0 ? (100 * used) / d.budgetBytes : null;
  return (
    <figure class="line-compare" data-testid="operator-panel">
      <figcaption>Disk and PLC {op
        ? <span class={op.ready ? 'muted' : 'warn'} data-testid="station-ready">· {op.ready ? 'Ready' : 'not Ready: the PLC holds the line'}</span>
        : <span class="muted">· waiting for the station</span>}</figcaption>
      {d ? (
        <div data-testid="disk" title={`DISK_LOW at ${bytes(d.highWaterBytes)}; a retention pass deletes down to ${bytes(d.lowWaterBytes)}`}>
          <meter style="width: 100%" min={0} max={d.budgetBytes} low={d.lowWaterBytes} high={d.highWaterBytes} optimum={0}
            value={used ?? 0} data-testid="disk-meter" />
          <div class={d.low ? 'warn' : 'muted'} data-testid="disk-used">
            images {bytes(used)} of {bytes(d.budgetBytes)}{pct !== null ? ` (${pct.toFixed(0)} %)` : ''}{d.low ? ' · DISK_LOW' : ''}
          </div>
          <div class="muted" data-testid="disk-free">free {bytes(d.freeBytes)} of {bytes(d.totalBytes)} · writing {bytes(d.writeBytesPerSec)}/s
            {d.nextPassInMs !== null ? ` · next retention in ${Math.round(d.nextPassInMs / 1000)} s` : ''}</div>
        </div>
      ) : <div class="muted" data-testid="disk">{op ? 'retention off: nothing watches the disk' : '–'}</div>}
      <table class="line-table">
        <tbody>
          <tr><th title="no image was saved for these parts: the image writer's slots were full">images dropped</th>
            <Count n={op?.images.dropped} testid="images-dropped" alert /><th>written</th><Count n={op?.images.written} testid="images-written" /></tr>
          {rows.filter((_, i) => i % 2 === 0).map((r, i) => {
            const r2 = rows[2 * i + 1];
            return (
              <tr key={r.testid}><th>{r.label}</th><Count n={r.n} testid={r.testid} alert={r.alert} title={r.title} />
                {r2 ? <><th>{r2.label}</th><Count n={r2.n} testid={r2.testid} alert={r2.alert} title={r2.title} /></> : null}</tr>
            );
          })}
        </tbody>
      </table>
    </figure>
  );
}

/** The newest rejects (from the feed), each linking to its part. */
function LastRejects({ op }: { op: OperatorStatus | null }) {
  const items = op?.lastRejects ?? [];
  return (
    <>
      <h3>Last rejects</h3>
      {items.length === 0 ? <p class="muted" data-testid="last-rejects-empty">No reject yet.</p> : (
        <table class="line-table" data-testid="last-rejects">
          <tbody>
            {items.map((p) => (
              <tr key={`${p.runId}/${p.seq}`} data-testid="last-reject-row">
                <td><a href={labelHref(p.runId, p.seq)}>#{p.seq}</a></td>
                <td>{new Date(p.at).toLocaleTimeString()}</td>
                <td>{p.defectClass ?? 'no class'}</td>
                <td class="num">{p.score?.toFixed(3) ?? '–'}</td>
                <td class="muted">{p.imageSaved ? 'image saved' : 'no image'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function LivePage() {
  const live = useLive();
  const [polled, setPolled] = useState<Health | null>(null);
  const [heat, setHeat] = useState(true);
  const [frameTick, setFrameTick] = useState(0);
  const [frameOk, setFrameOk] = useState(true);
  useEffect(() => {
    const poll = (): void => { api.health().then(setPolled, () => undefined); };
    poll();
    const t = setInterval(poll, 3000);
    const f = setInterval(() => setFrameTick((n) => { if (n % 10 === 9) setFrameOk(true); return n + 1; }), 1000);
    return () => { clearInterval(t); clearInterval(f); };
  }, []);
  useKeys('Live', [{ keys: ['h'], help: 'heatmap overlay on / off', run: () => setHeat((h) => !h) }]);

  const health: Partial<Health> = live.health ?? polled ?? {};
  const last = live.stats[live.stats.length - 1];
  // the latest saved parts come from the queue (their images are on disk by then), refreshed when the feed says new ones were saved
  const [saved, setSaved] = useState<Part[]>([]);
  useEffect(() => {
    const t = setTimeout(() => {
      api.parts({ limit: 6 }).then((r) => setSaved(r.items.filter((p) => p.hasImage).map((p) => ({ ...p, threshold: r.threshold ?? null }))), () => undefined);
    }, saved.length ? 1500 : 0);
    return () => clearTimeout(t);
  }, [live.savedSeq]);
  const xs = live.stats.map((s) => s.atMs / 1000);
  const rateData = useMemo(() => [xs, live.stats.map((s) => s.partsPerSec),
    live.stats.map((s) => (s.rejectRate === null ? null : s.rejectRate * 100))] as uPlot.AlignedData, [live.stats]);
  const latData = useMemo(() => [xs, live.stats.map((s) => s.p50Ms), live.stats.map((s) => s.p99Ms)] as uPlot.AlignedData, [live.stats]);
  const lastReject = live.parts.find((p) => p.verdict === 'reject'); // newest first
  const pill = (c?: { state: 'up' | 'degraded' | 'down' }) => c?.state ?? 'unknown';

  return (
    <div class="live">
      <div class="live-status">
        <StatusPill state={pill(health.camera)} label="Camera" title={health.camera?.detail}>{health.camera ? `${health.camera.frames} frames, ${health.camera.dropped} dropped` : ''}</StatusPill>
        <StatusPill state={pill(health.model)} label="Model" title={health.model?.detail}>{health.model ? `${health.model.name}@${health.model.version} · ${health.model.provider}` : ''}</StatusPill>
        {/* green only while connected and in sync: degraded (amber) while PART_SYNC is raised, down (red) when the link is */}
        <StatusPill state={pill(health.plc)} label="PLC" title={health.plc ? `${health.plc.endpoint} · ${health.plc.detail ?? ''}` : undefined}>
          {health.plc ? `${health.plc.writes} writes, ${health.plc.writeErrors} errors${health.plc.state === 'degraded' ? ' · out of sync' : ''}` : ''}
        </StatusPill>
        <StatusPill state={live.connected ? 'up' : 'down'} label="Live feed">{live.connected ? 'connected' : 'reconnecting'}</StatusPill>
        {(health.alarms ?? []).map((a) => <span key={a} class="alarm" role="alert" data-testid="alarm">⚠ {a}</span>)}
      </div>
      <div class="kpis">
        <Kpi testid="kpi-rate" label="parts / s" value={last ? last.partsPerSec.toFixed(1) : '–'} />
        <Kpi testid="kpi-reject" label="reject rate" value={last?.rejectRate != null ? (last.rejectRate * 100).toFixed(1) : '–'} unit="%" />
        <Kpi testid="kpi-p50" label="frame→verdict p50" value={last?.p50Ms != null ? last.p50Ms.toFixed(1) : '–'} unit="ms" />
        <Kpi testid="kpi-p99" label="frame→verdict p99" value={last?.p99Ms != null ? last.p99Ms.toFixed(1) : '–'} unit="ms" />
        <Kpi testid="kpi-parts" label="parts this run" value={health.parts !== undefined ? String(health.parts) : '–'} />
      </div>
      <div class="live-main">
        <figure class="latest-frame">
          <figcaption>Latest frame</figcaption>
          {frameOk
            ? <img src={`/api/live/frame.jpg?t=${frameTick}`} alt="latest camera frame" onError={() => setFrameOk(false)} />
            : <p class="muted">No live frame available yet.</p>}
        </figure>
        <div class="live-charts">
          <Chart title="live, 5 s window:" legend={false} testid="live-chart" height={120} data={rateData}
            series={[{ label: 'parts/s', stroke: '#4fc3f7', width: 2, scale: 'n' }, { label: 'reject %', stroke: '#ef5350', width: 2, scale: '%' }]}
            scales={{ n: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] }, '%': { range: [0, 100] } }}
            axes={[axis(), axis({ scale: 'n' }), axis({ scale: '%', side: 1, grid: { show: false } })]} />
          <Chart title="frame→verdict ms:" legend={false} testid="live-latency" height={120} data={latData}
            series={[{ label: 'p50', stroke: '#81c784', width: 2 }, { label: 'p99', stroke: '#ffb74d', width: 2 }]} />
        </div>
        <LineTable line={health.plc?.line} />
      </div>
      <div class="live-main">
        <OperatorPanel op={live.operator} />
        <div><LastRejects op={live.operator} /></div>
      </div>
      <h3>Latest saved parts <span class="muted">(<kbd>h</kbd> heatmap {heat ? 'on' : 'off'})</span></h3>
      <div class="cards">
        {saved.length === 0 ? <p class="muted">No saved part yet (rejects and near-threshold passes are saved).</p> : null}
        {saved.map((p) => (
          <a class="card" key={`${p.runId}/${p.seq}`} href={labelHref(p.runId, p.seq)} data-testid="live-card">
            <Thumb part={p} heatmap={heat} width={170} />
            <div class="card-meta"><span>#{p.seq}</span><VerdictBadge verdict={p.verdict} />{p.model.defectClass ? <span class="muted" data-testid="live-card-class">{p.model.defectClass}</span> : null}<ScoreBar score={p.score} threshold={p.threshold} /></div>
          </a>
        ))}
      </div>
      <h3>Recent verdicts {lastReject
        ? <span class="muted" data-testid="last-reject">· last reject #{lastReject.seq}: {lastReject.defectClass ?? 'no class'}</span>
        : null}</h3>
      <div class="strip" data-testid="recent-strip">
        {live.parts.slice(0, 60).map((p) => (
          <span key={`${p.runId}/${p.seq}`} class={`tick tick-${p.verdict}`} title={`#${p.seq} ${p.verdict}${p.defectClass ? ` ${p.defectClass}` : ''} ${p.score?.toFixed(3) ?? ''}`} />
        ))}
      </div>
    </div>
  );
}
