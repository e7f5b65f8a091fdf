/** Why the model decided what it did: score against threshold, result code, model, map peaks. */
import { RESULT_CODES, type Part } from '../api.js';
import type { PeakRegion } from './heatmap.js';
import { ScoreBar, VerdictBadge } from './StatusPill.js';

export function Explain({ part, peaks }: { part: Part; peaks: PeakRegion[] }) {
  const t = part.threshold ?? null;
  const s = part.score;
  const code = RESULT_CODES[part.code] ?? `code ${part.code}`;
  let why: string;
  if (part.code === 2) why = 'The model failed on this frame, so the part was rejected (fail-safe).';
  else if (part.code === 3) why = 'The verdict came too late for its budget, so the part was rejected (fail-safe).';
  else if (part.code === 4) why = 'The frame could not be registered to the golden part, so the part was rejected.';
  else if (s === null) why = 'No score was produced.';
  else if (t === null) why = `Score ${s.toFixed(3)}; the threshold is not known to the server.`;
  else if (part.verdict === 'reject') why = `Score ${s.toFixed(3)} ≥ threshold ${t.toFixed(3)} (over by ${(s - t).toFixed(3)}).`;
  else why = `Score ${s.toFixed(3)} < threshold ${t.toFixed(3)}: passed, ${(t - s).toFixed(3)} below the threshold${part.doubtful ? ' (near it: doubtful)' : ''}.`;
  return (
    <section class="explain" data-testid="explain">
      <h3>Why <VerdictBadge verdict={part.verdict} /></h3>
      <p>{why}</p>
      <ScoreBar score={s} threshold={t} />
      <dl>
        <dt>Result code</dt><dd>{part.code} {code}</dd>
        <dt>Model</dt><dd>{part.model.name}@{part.model.version}{part.provider ? ` (${part.provider})` : ''}</dd>
        {part.frameToVerdictMs != null ? <><dt>Frame→verdict</dt><dd>{part.frameToVerdictMs.toFixed(1)} ms</dd></> : null}
        <dt>Map peaks</dt>
        <dd>{peaks.length === 0 ? 'no hot region in the anomaly map' : peaks.map((p, i) => (
          <div key={i}>#{i + 1} at {Math.round(p.x)},{Math.round(p.y)} · {Math.round(p.w)}×{Math.round(p.h)} px · peak {p.peak.toFixed(2)}</div>
        ))}</dd>
      </dl>
    </section>
  );
}
