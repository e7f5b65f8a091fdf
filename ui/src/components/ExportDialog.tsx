/**
 * Export the labelled parts of the current queue filter as a training set
 * (COCO, YOLO or Anomalib/MVTec folders): starts `POST /api/exports`, follows its
 * progress, and links the result's files and the whole export as one zip
 * (`GET /api/exports/:id/archive`, streamed by the station). qa and ml may export.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, EXPORT_MAIN_FILE, exportFileUrl, type ExportFilter, type ExportJob } from '../api.js';
import { useKeys } from './keys.js';

/** the whole finished export as one zip (manifest.json inside) */
export const exportArchiveUrl = (id: string): string => `/api/exports/${encodeURIComponent(id)}/archive`;
/** a download without leaving the page (the link's `download` attribute keeps the server's file name) */
function download(id: string): void {
  const a = document.createElement('a');
  a.href = exportArchiveUrl(id);
  a.download = '';
  document.body.appendChild(a);
  a.click();
  a.remove();
}

const FORMATS: Array<[ExportJob['format'], string]> = [['coco', 'COCO (boxes + polygons)'], ['yolo', 'YOLO'], ['mvtec', 'Anomalib folder / MVTec']];

export function ExportDialog({ filter, describe, onClose }: { filter: ExportFilter; describe: string; onClose: () => void }) {
  const [format, setFormat] = useState<ExportJob['format']>('coco');
  const [job, setJob] = useState<ExportJob | null>(null);
  const [recent, setRecent] = useState<ExportJob[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => { api.exports().then(setRecent, () => undefined); }, [job?.status]);
  useEffect(() => {
    if (!job || job.status !== 'running') return;
    const t = setTimeout(() => { api.exportStatus(job.id).then(setJob, (e: ApiError) => setError(e.message)); }, 400);
    return () => clearTimeout(t);
  }, [job]);
  const start = async (): Promise<void> => {
    setError(null);
    try {
      const { id } = await api.createExport(format, filter);
      setJob(await api.exportStatus(id));
    } catch (e) { setError(`${(e as ApiError).code}: ${(e as ApiError).message}`); }
  };
  useKeys('Export', [
    { keys: ['Enter'], help: 'start the export', run: () => void start(), when: () => !job || job.status !== 'running' },
    { keys: ['d'], help: 'download the finished export as one .zip', run: () => { if (job) download(job.id); }, when: () => job?.status === 'done' },
    { keys: ['Escape'], help: 'close', run: onClose },
  ], { modal: true });
  return (
    <div class="overlay" onClick={onClose}>
      <div class="dialog" onClick={(e) => e.stopPropagation()} data-testid="export-dialog" role="dialog" aria-label="Export">
        <h2>Export a training set</h2>
        <p class="muted">Labelled parts of: {describe}. Parts labelled “unsure” are never exported.</p>
        <div class="choices">
          {FORMATS.map(([f, label]) => (
            <label key={f}><input type="radio" name="format" value={f} checked={format === f} onChange={() => setFormat(f)} /> {label}</label>
          ))}
        </div>
        <p><button onClick={() => void start()} disabled={job?.status === 'running'} data-testid="export-start">Export <kbd>Enter</kbd></button> <button onClick={onClose}>Close <kbd>Esc</kbd></button></p>
        {error ? <p class="error">{error}</p> : null}
        {job ? (
          <div class="export-job" data-testid="export-job" data-status={job.status}>
            <b>{job.id}</b> · {job.status} · {job.progress.phase} {job.progress.done}/{job.progress.total}
            {job.counts ? <div>{job.counts.images} images · {job.counts.annotations} annotations · {job.counts.good} good · excluded unsure {job.counts.excludedUnsure}</div> : null}
            {job.status === 'done' ? <div><a href={exportArchiveUrl(job.id)} download class="button" data-testid="export-download">download .zip <kbd>d</kbd></a> · <a href={exportFileUrl(job.id, EXPORT_MAIN_FILE[job.format])} target="_blank" rel="noreferrer" data-testid="export-file">{EXPORT_MAIN_FILE[job.format]}</a> · <a href={exportFileUrl(job.id, 'manifest.json')} target="_blank" rel="noreferrer">manifest.json</a> · on the station: <code>{job.path}</code></div> : null}
            {job.error ? <div class="error">{job.error.code}: {job.error.message}</div> : null}
          </div>
        ) : null}
        {recent.length ? <>
          <h3>Recent exports</h3>
          <table class="grid"><tbody>
            {recent.slice(0, 6).map((j) => (
              <tr key={j.id}><td>{j.createdAt.replace('T', ' ').slice(0, 19)}</td><td>{j.format}</td><td>{j.actor}</td><td>{j.status}</td>
                <td>{j.counts ? `${j.counts.images} img / ${j.counts.annotations} ann` : ''}</td>
                <td>{j.status === 'done' ? <><a href={exportArchiveUrl(j.id)} download>.zip</a> · <a href={exportFileUrl(j.id, EXPORT_MAIN_FILE[j.format])} target="_blank" rel="noreferrer">{EXPORT_MAIN_FILE[j.format]}</a></> : ''}</td></tr>
            ))}
          </tbody></table>
        </> : null}
      </div>
    </div>
  );
}
