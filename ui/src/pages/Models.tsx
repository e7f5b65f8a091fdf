/**
 * Models: the live model (provider, threshold, classes), and with the model
 * registry API the versions, live / shadow / rollback state, the shadow model's
 * agreement with the live verdicts, and shadow / promote / roll back for the ml
 * and admin roles (the server checks the role too; a promotion is validated and
 * may be refused with reasons). Without the registry it shows the live model only.
 *
 * An action is confirmed in an in-page panel (no native confirm()). A promotion's
 * validation gate answers with its report, accepted or refused (a 422 carries it as
 * data): the page lists each check (load, latency, accuracy) with its figure and its
 * verdict in words, never raw JSON.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, labelHrefFor, type Health, type ModelItem, type ModelList, type ShadowReport, type User, type ValidationReport } from '../api.js';
import { useKeys } from '../components/keys.js';

/** One check of the validation gate (registry/validation-gate.ts GateCheck). */
interface GateCheck { check: string; ok: boolean; figure?: string; detail: string }
interface GateReport { model: { name: string; version: string }; ok: boolean; checks: GateCheck[] }
const CHECK_NAMES: Record<string, string> = { load: 'Loads', latency: 'Latency (P99)', accuracy: 'Golden-set accuracy' };

function GateReportPanel({ report, onClose }: { report: GateReport; onClose: () => void }) {
  return (
    <section class="dialog gate-report" data-testid="gate-report" role="region" aria-label="Validation gate">
      <h3>Validation gate: {report.model.name}@{report.model.version} {report.ok
        ? <span class="verdict verdict-pass">promoted</span>
        : <span class="verdict verdict-reject">refused: the live model is unchanged</span>}</h3>
      <table class="grid">
        <thead><tr><th>check</th><th>figure</th><th>verdict</th><th>why</th></tr></thead>
        <tbody>
          {report.checks.map((c) => (
            <tr key={c.check} data-check={c.check}>
              <td>{CHECK_NAMES[c.check] ?? c.check}</td>
              <td>{c.figure ?? ''}</td>
              <td>{c.ok ? <span class="verdict verdict-pass">passed</span> : <span class="verdict verdict-reject">failed</span>}</td>
              <td class="desc">{c.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p><button onClick={onClose}>close</button></p>
    </section>
  );
}

const pct = (a: number, b: number): string => (b > 0 ? `${((100 * a) / b).toFixed(1)} %` : '–');

export function ModelsPage({ user }: { user: User }) {
  const [list, setList] = useState<ModelList | null>(null);
  const [missing, setMissing] = useState(false);
  const [health, setHealth] = useState<Health | null>(null);
  const [shadow, setShadow] = useState<ShadowReport | null>(null);
  const [cursor, setCursor] = useState(0);
  const [message, setMessage] = useState<string | null>(null);
  const [threshold, setThreshold] = useState<number | null>(null);
  const [classes, setClasses] = useState<string[]>([]);
  /** the action waiting for the in-page confirmation, and the last gate report */
  const [pending, setPending] = useState<{ label: string; path: string; method: 'POST' | 'DELETE' } | null>(null);
  const [gate, setGate] = useState<GateReport | null>(null);
  const canAct = user.role === 'ml' || user.role === 'admin';
  const rows: ModelItem[] = list?.models ?? [];

  const load = (): void => {
    api.health().then(setHealth, () => undefined);
    api.threshold().then(setThreshold, () => undefined);
    api.classes().then(setClasses, () => undefined);
    api.models().then((r) => {
      setList(r);
      setMissing(false);
      if (r.shadow) api.shadowReport().then(setShadow, () => setShadow(null)); // only while a shadow runs
      else setShadow(null);
    }, (e: ApiError) => {
      if (e.status === 404) setMissing(true);
      else setMessage(`Could not list models: ${e.message}`);
    });
  };
  useEffect(load, []);

  /** ask first (in the page), then run */
  const act = (label: string, path: string, method: 'POST' | 'DELETE' = 'POST'): void => setPending({ label, path, method });
  const run = async (): Promise<void> => {
    if (!pending) return;
    const { label, path, method } = pending;
    setPending(null);
    setGate(null);
    setMessage(`${label}…`);
    try {
      const out = await api.modelAction(path, method) as Partial<ValidationReport>;
      if (out.checks) setGate(out as GateReport);
      setMessage(`${label}: done`);
      load();
    } catch (e) {
      const a = e as ApiError;
      const report = (a.body as { report?: GateReport } | null)?.report;
      if (report) setGate(report);
      setMessage(report ? `${label}: refused by the validation gate (see the checks below)` : `${label} refused: ${a.message} (${a.code})`);
    }
  };
  const current = rows[cursor];
  const enc = encodeURIComponent;
  const path = (m: ModelItem, action: string): string => `/api/models/${enc(m.name)}/${enc(m.version)}/${action}`;
  const shadowIt = (m: ModelItem) => void act(`Shadow ${m.name}@${m.version}`, path(m, 'shadow'));
  const promote = (m: ModelItem) => void act(`Promote ${m.name}@${m.version} to live (validated first)`, path(m, 'promote'));
  const rollback = () => void act('Roll back to the previous live model', '/api/models/rollback');
  const stopShadow = () => void act('Stop the shadow model', '/api/models/shadow', 'DELETE');
  useKeys('Models', [
    { keys: ['j', 'ArrowDown'], help: 'next version', run: () => setCursor((c) => Math.min(rows.length - 1, c + 1)) },
    { keys: ['k', 'ArrowUp'], help: 'previous version', run: () => setCursor((c) => Math.max(0, c - 1)) },
    { keys: ['s'], help: 'run the version in shadow (ml)', when: () => canAct && !!current, run: () => shadowIt(current!) },
    { keys: ['shift+P'], help: 'promote the version to live (ml)', when: () => canAct && !!current, run: () => promote(current!) },
    { keys: ['shift+B'], help: 'roll back to the previous live model (ml)', when: () => canAct && !!list?.previous.length, run: rollback },
    { keys: ['shift+X'], help: 'stop the shadow model (ml)', when: () => canAct && !!list?.shadow, run: stopShadow },
    { keys: ['g'], help: 'reload', run: load },
    { keys: ['Enter'], help: 'confirm the action asked', when: () => !!pending, run: () => void run() },
    { keys: ['Escape'], help: 'cancel the action asked', when: () => !!pending, run: () => setPending(null) },
  ]);

  return (
    <div class="models">
      <section class="live-model" data-testid="live-model">
        <h3>Live model</h3>
        {health ? (
          <dl class="facts">
            <dt>Model</dt><dd><b>{health.model.name}@{health.model.version}</b> · {health.model.state}{health.model.detail ? ` · ${health.model.detail}` : ''}</dd>
            <dt>Provider</dt><dd>{health.model.provider}{(health.model as { fallbacks?: Array<{ provider: string; reason: string }> }).fallbacks?.map((f) => ` · fell back from ${f.provider}: ${f.reason}`)}</dd>
            <dt>Threshold</dt><dd>{threshold === null ? '–' : threshold.toFixed(3)}</dd>
            <dt>Classes</dt><dd>{classes.length ? classes.join(', ') : '–'}</dd>
            <dt>Parts this run</dt><dd>{health.parts}</dd>
          </dl>
        ) : <p class="muted">…</p>}
      </section>
      {missing ? <p class="muted">This station has no model registry API: only the live model is shown.</p> : null}
      {message ? <p class="flash" data-testid="models-message">{message}</p> : null}
      {pending ? (
        <section class="dialog" data-testid="models-confirm" role="region" aria-label="Confirm">
          <p>{pending.label}?</p>
          <p><button data-testid="models-confirm-yes" onClick={() => void run()}>yes <kbd>Enter</kbd></button>{' '}
            <button onClick={() => setPending(null)}>cancel <kbd>Esc</kbd></button></p>
        </section>
      ) : null}
      {gate ? <GateReportPanel report={gate} onClose={() => setGate(null)} /> : null}
      {list ? <>
        <h3>Registered versions {canAct ? '' : <span class="muted">(actions need the ml role)</span>}</h3>
        <table class="grid" data-testid="models-table">
          <thead><tr><th>name</th><th>version</th><th>state</th><th>kind</th><th>threshold</th><th>description</th><th>actions</th></tr></thead>
          <tbody>
            {rows.map((m, i) => (
              <tr key={`${m.name}@${m.version}`} class={i === cursor ? 'cursor' : ''} onClick={() => setCursor(i)}>
                <td>{m.name}</td><td>{m.version}</td>
                <td>{m.live ? <span class="verdict verdict-pass">live</span> : m.shadow ? <span class="verdict">shadow</span> : m.previous ? <span class="muted">rollback #{m.previous}</span> : ''}
                  {m.problem ? <span class="error" title={m.problem}> ⚠ {m.problem}</span> : null}</td>
                <td>{m.kind ?? ''}</td><td>{m.threshold === null ? '' : m.threshold.toFixed(3)}</td>
                <td class="desc">{m.description ?? ''}</td>
                <td>
                  <button disabled={!canAct || m.shadow || m.live} onClick={() => shadowIt(m)}>shadow <kbd>s</kbd></button>
                  <button disabled={!canAct || m.live} onClick={() => promote(m)}>promote <kbd>P</kbd></button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <p>
          <button disabled={!canAct || !list.previous.length} onClick={rollback}>roll back to {list.previous[0] ? `${list.previous[0].name}@${list.previous[0].version}` : '–'} <kbd>B</kbd></button>{' '}
          <button disabled={!canAct || !list.shadow} onClick={stopShadow}>stop shadow <kbd>X</kbd></button>
        </p>
      </> : null}
      {shadow ? (
        <section data-testid="shadow-report">
          <h3>Shadow agreement: {shadow.shadow ? `${shadow.shadow.name}@${shadow.shadow.version}` : '–'} vs live {shadow.live ? `${shadow.live.name}@${shadow.live.version}` : '–'}</h3>
          <dl class="facts">
            <dt>Since</dt><dd>{shadow.since ?? '–'}</dd>
            <dt>Compared</dt><dd>{shadow.compared} parts · agree {shadow.agree} ({pct(shadow.agree, shadow.compared)})</dd>
            <dt>Shadow rejects, live passed</dt><dd>{shadow.shadowRejectsLivePasses}</dd>
            <dt>Shadow passes, live rejected</dt><dd>{shadow.shadowPassesLiveRejects}</dd>
          </dl>
          {shadow.disagreements.length ? (
            <table class="grid"><thead><tr><th>part</th><th>live</th><th>shadow</th></tr></thead><tbody>
              {shadow.disagreements.slice(0, 20).map((d) => (
                <tr key={`${d.run_id}/${d.seq}`}><td><a href={labelHrefFor(d.run_id, d.seq)}>#{d.seq}</a></td>
                  <td>{d.live_verdict} {d.live_score?.toFixed(3) ?? ''}</td><td>{d.verdict} {d.score?.toFixed(3) ?? ''}</td></tr>
              ))}
            </tbody></table>
          ) : null}
        </section>
      ) : null}
    </div>
  );
}
