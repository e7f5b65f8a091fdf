/**
 * Focus and exposure of the live frame during setup (`GET /api/calibration/live-check`,
 * every 1.5 s): sharpness (Tenengrad) against the calibrated band, mean grey
 * against reference ± band, saturated and dark shares, and the grey histogram.
 */
import { useEffect, useState } from 'preact/hooks';
import { calibrationApi, type ApiError, type LiveCheck } from '../api.js';

function Histogram({ bins }: { bins: number[] }) {
  const max = Math.max(1, ...bins);
  const w = 256 / bins.length;
  return (
    <svg class="calib-hist" viewBox="0 0 256 60" preserveAspectRatio="none" data-testid="calib-histogram">
      {bins.map((b, i) => <rect key={i} x={i * w} y={60 - (b / max) * 60} width={w} height={(b / max) * 60} class={i === bins.length - 1 ? 'sat' : i === 0 ? 'dark' : ''} />)}
    </svg>
  );
}

function Row({ name, value, band, ok }: { name: string; value: string; band: string; ok: boolean }) {
  return <tr class={ok ? '' : 'bad'}><td>{name}</td><td class="num">{value}</td><td class="muted">{band}</td><td>{ok ? '✓' : '⚠'}</td></tr>;
}

export function CalibrationChecks({ everyMs = 1500, refreshKey = 0 }: { everyMs?: number; refreshKey?: number }) {
  const [c, setC] = useState<LiveCheck | null>(null);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let t: ReturnType<typeof setTimeout> | undefined;
    const poll = (): void => {
      calibrationApi.liveCheck().then((r) => { if (live) { setC(r); setErr(null); } }, (e: ApiError) => { if (live) setErr(e.message); })
        .finally(() => { if (live) t = setTimeout(poll, everyMs); });
    };
    poll();
    return () => { live = false; clearTimeout(t); };
  }, [everyMs, refreshKey]);

  if (!c) return <section class="calib-checks"><h3>Focus &amp; exposure</h3><p class="muted">{err ?? 'measuring…'}</p></section>;
  const { checks: k, reference: ref, bands } = c;
  const minSharp = ref ? (1 - bands.sharpnessDropMax) * ref.tenengrad : null;
  const meanOk = !ref || Math.abs(k.mean - ref.mean) <= bands.meanDeltaMax;
  return (
    <section class="calib-checks" data-testid="calib-checks">
      <h3>Focus &amp; exposure <span class={`calib-state ${c.focus.ok && c.exposure.ok ? 'ok' : 'bad'}`}>{c.focus.ok && c.exposure.ok ? 'in band' : 'out of band'}</span></h3>
      <table class="grid">
        <tbody>
          <Row name="sharpness" value={k.tenengrad.toFixed(0)} band={minSharp !== null ? `≥ ${minSharp.toFixed(0)} (ref ${ref!.tenengrad.toFixed(0)})` : 'no reference'} ok={c.focus.ok} />
          <Row name="mean grey" value={k.mean.toFixed(1)} band={ref ? `${(ref.mean - bands.meanDeltaMax).toFixed(0)}–${(ref.mean + bands.meanDeltaMax).toFixed(0)}` : 'no reference'} ok={meanOk} />
          <Row name="saturated" value={`${(k.saturatedFraction * 100).toFixed(2)} %`} band={`≤ ${(bands.saturatedMax * 100).toFixed(1)} %`} ok={k.saturatedFraction <= bands.saturatedMax} />
          <Row name="dark" value={`${(k.darkFraction * 100).toFixed(2)} %`} band="" ok />
          <Row name="p1 / p99" value={`${k.p01} / ${k.p99}`} band="" ok />
        </tbody>
      </table>
      <Histogram bins={k.histogram} />
      {!c.focus.ok ? <p class="error">{c.focus.detail}</p> : null}
      {!c.exposure.ok ? <p class="error">{c.exposure.detail}</p> : null}
      <p class="muted small">frame {c.frame.width}×{c.frame.height}, inside the ROI · every {(everyMs / 1000).toFixed(1)} s</p>
    </section>
  );
}
