/** The `?` overlay: every shortcut that is live right now, grouped by page and component. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { activeBindings, keyLabel, onBindingsChanged, useKeys } from './keys.js';

export function CheatSheet() {
  const [open, setOpen] = useState(false);
  const openRef = useRef(open);
  openRef.current = open;
  const [, setTick] = useState(0);
  useEffect(() => onBindingsChanged(() => setTick((t) => t + 1)), []);
  useKeys('Everywhere', [
    { keys: ['?'], help: 'show / hide this cheat-sheet', run: () => setOpen((o) => !o) },
    { keys: ['Escape'], help: 'close this cheat-sheet', run: () => setOpen(false), when: () => openRef.current },
  ]);
  if (!open) return null;
  return (
    <div class="overlay" onClick={() => setOpen(false)} role="dialog" aria-label="Keyboard shortcuts">
      <div class="cheatsheet" onClick={(e) => e.stopPropagation()}>
        <ModalKeys />
        <h2>Keyboard shortcuts</h2>
        <div class="cheat-groups">
          {activeBindings().map(([group, list]) => (
            <section key={group}>
              <h3>{group}</h3>
              <table>
                <tbody>
                  {list.map((b) => (
                    <tr key={b.help}>
                      <td class="keys">{b.display ? <kbd>{b.display}</kbd> : b.keys.map((k) => <kbd key={k}>{keyLabel(k)}</kbd>)}</td>
                      <td>{b.help}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          ))}
        </div>
        <p class="muted">Press <kbd>?</kbd> or <kbd>Esc</kbd> to close.</p>
      </div>
    </div>
  );
}

/** While the cheat-sheet is open, the page's own keys are off (only `?` and `Esc` work). */
function ModalKeys() {
  useKeys('Cheat-sheet', [], { modal: true });
  return null;
}
