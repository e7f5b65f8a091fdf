/**
 * Step 1 of the calibration page: the lens. Runs `POST /api/calibration/lens`
 * on a folder of checkerboard images on the station and shows the fit (RMS,
 * camera matrix, distortion, per-view errors) and, for a chosen view, the
 * corners found and the same view undistorted (`/api/calibration/lens/view.png`).
 */
import { useState } from 'preact/hooks';
import { calibrationApi, type ApiError, type CalDoc, type CalLensResult } from '../api.js';

const f = (v: number, d = 2): string => v.toFixed(d);

export function CalibrationLens({ lens, admin, onSaved }: { lens: CalDoc['lens'] | undefined; admin: boolean; onSaved: () => void }) {
  const [dir, setDir] = useState('');
  const [board, setBoard] = useState({ cols: lens?.board.cols ?? 9, rows: lens?.board.rows ?? 6, squareMm: lens?.board.squareMm ?? 5 });
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const [result, setResult] = useState<CalLensResult | null>(null);
  const [view, setView] = useState<string | null>(null);

  const run = async (): Promise<void> => {
    setBusy(true); setErr(null);
    try {
      const r = await calibrationApi.lens(dir.trim(), board);
      setResult(r);
      setView(r.views.find((v) => v.found)?.name ?? null);
      onSaved();
    } catch (e) { setErr(`${(e as ApiError).code}: ${(e as ApiError).message}`); } finally { setBusy(false); }
  };
  const num = (k: keyof typeof board) => (e: Event): void => setBoard({ ...board, [k]: Number((e.target as HTMLInputElement).value) });

  return (
    <div class="calib-step" data-testid="calib-lens">
      <p class="muted">Checkerboard images (10 or more, the board in different places and tilts) in a folder on the station.</p>
      <div class="calib-form">
        <label>folder <input value={dir} onInput={(e) => setDir((e.target as HTMLInputElement).value)} placeholder="/data/boards" size={28} data-testid="lens-dir" /></label>
        <label>inner corners <input type="number" min={3} value={board.cols} onInput={num('cols')} class="n" />×<input type="number" min={3} value={board.rows} onInput={num('rows')} class="n" /></label>
        <label>square mm <input type="number" min={0.1} step={0.1} value={board.squareMm} onInput={num('squareMm')} class="n" /></label>
        <button onClick={() => void run()} disabled={!admin || busy || !dir.trim()} data-testid="lens-run">{busy ? 'calibrating…' : 'calibrate lens'}</button>
      </div>
      {err ? <p class="error" data-testid="lens-error">{err}</p> : null}
      {lens ? (
        <dl class="facts" data-testid="lens-facts">
          <dt>RMS</dt><dd>{f(lens.rms, 3)} px over {lens.views} views ({lens.distinctViews} distinct)</dd>
          <dt>K</dt><dd>fx {f(lens.camera.fx, 1)} · fy {f(lens.camera.fy, 1)} · cx {f(lens.camera.cx, 1)} · cy {f(lens.camera.cy, 1)}</dd>
          <dt>distortion</dt><dd>k1 {f(lens.camera.dist[0], 4)} · k2 {f(lens.camera.dist[1], 4)} · p1 {f(lens.camera.dist[2], 5)} · p2 {f(lens.camera.dist[3], 5)} · k3 {f(lens.camera.dist[4], 4)}</dd>
          <dt>image</dt><dd>{lens.imageSize.width}×{lens.imageSize.height}, board {lens.board.cols}×{lens.board.rows} @ {lens.board.squareMm} mm</dd>
        </dl>
      ) : <p class="muted">No lens calibration yet: frames are used as the camera sees them.</p>}
      {result ? (
        <div class="calib-lens-result">
          <table class="grid calib-views">
            <thead><tr><th>view</th><th>board</th><th>RMS px</th></tr></thead>
            <tbody>
              {result.views.map((v) => (
                <tr key={v.name} class={v.name === view ? 'cursor' : ''} onClick={() => v.found && setView(v.name)}>
                  <td>{v.name}</td><td>{v.found ? `${v.corners?.length ?? 0} corners` : 'not found'}</td><td class="num">{v.rms !== null ? f(v.rms, 3) : '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {view ? (
            <div class="calib-pair">
              <figure><figcaption>corners found</figcaption><img src={calibrationApi.lensViewUrl(dir.trim(), view, false)} alt="corners found" /></figure>
              <figure><figcaption>undistorted: rows should be straight</figcaption><img src={calibrationApi.lensViewUrl(dir.trim(), view, true)} alt="undistorted grid" /></figure>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
