/** saved / saving / offline indicator for the label saver, shown in the top bar. */
import { useEffect, useState } from 'preact/hooks';
import { labelSaver, type SaverStatus } from '../label-saver.js';

export function SaveIndicator() {
  const [s, setS] = useState<SaverStatus>(labelSaver.status);
  useEffect(() => labelSaver.onStatus(setS), []);
  const text = s.state === 'saved' ? 'all saved'
    : s.state === 'saving' ? `saving ${s.pending}…`
    : s.state === 'offline' ? `offline: ${s.pending} unsent (kept)` : `not saved: ${s.message}`;
  return <span class={`save save-${s.state}`} data-testid="save-state" data-state={s.state} title={s.message}>{text}</span>;
}
