/**
 * Keyboard-first plumbing: `useKeys()` binds a page's shortcuts (ignored while
 * typing in a field), and every binding carries the text the `?` cheat-sheet shows.
 */
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';

export interface KeyBinding {
  /**
   * `KeyboardEvent.key` values, e.g. ['j', 'ArrowDown']; prefix 'shift+' / 'ctrl+' when required
   * ('ctrl' also matches ⌘ on a Mac). With Shift held the key is the shifted one: 'ctrl+shift+Z'.
   */
  keys: string[];
  help: string;
  run: (e: KeyboardEvent) => void;
  /** how the cheat-sheet prints the keys, when listing them all would be too long */
  display?: string;
  /** the binding is live only while this returns true (default: always) */
  when?: () => boolean;
}

/** The bindings currently shown in the cheat-sheet, per group (page or component). */
const active = new Map<string, KeyBinding[]>();
const watchers = new Set<() => void>();
/** groups of open dialogs, innermost last: while one is open, only its keys (and 'Everywhere') work */
const modals: string[] = [];

export function activeBindings(): Array<[string, KeyBinding[]]> {
  return [...active.entries()];
}
export function onBindingsChanged(fn: () => void): () => void {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

export function isTyping(e: Event): boolean {
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  const tag = t.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable;
}

function matches(spec: string, e: KeyboardEvent): boolean {
  const parts = spec.split('+');
  const key = parts.pop()!;
  const want = { shift: parts.includes('shift'), ctrl: parts.includes('ctrl') };
  if ((e.ctrlKey || e.metaKey) !== want.ctrl) return false;
  if (want.shift && !e.shiftKey) return false;
  return e.key === key || (key.length === 1 && e.key.toLowerCase() === key && !want.shift && !e.shiftKey);
}

/**
 * Bind shortcuts while the calling component is mounted. Bindings are read fresh on every key press.
 * The listener is attached in a layout effect, in the same commit that puts the component on screen:
 * a plain effect runs a frame later, and a key pressed as soon as the page shows was lost.
 * `modal`: a dialog's keys; while it is mounted the other groups' keys are off.
 */
export function useKeys(group: string, bindings: KeyBinding[], opts: { modal?: boolean } = {}): void {
  const ref = useRef(bindings);
  ref.current = bindings;
  useLayoutEffect(() => {
    active.set(group, ref.current);
    if (opts.modal) modals.push(group);
    watchers.forEach((w) => w());
    const onKey = (e: KeyboardEvent): void => {
      if (isTyping(e) || e.defaultPrevented) return;
      const top = modals[modals.length - 1];
      if (top !== undefined && top !== group && group !== 'Everywhere') return;
      for (const b of ref.current) {
        if ((!b.when || b.when()) && b.keys.some((k) => matches(k, e))) {
          e.preventDefault();
          b.run(e);
          return;
        }
      }
    };
    addEventListener('keydown', onKey);
    return () => {
      removeEventListener('keydown', onKey);
      if (opts.modal) modals.splice(modals.lastIndexOf(group), 1);
      active.delete(group);
      watchers.forEach((w) => w());
    };
  }, [group]);
  useEffect(() => { active.set(group, bindings); });
}

/** How a key is printed in the cheat-sheet and in hints. */
export function keyLabel(k: string): string {
  const names: Record<string, string> = {
    ArrowDown: '↓', ArrowUp: '↑', ArrowLeft: '←', ArrowRight: '→', Delete: 'Del', Backspace: '⌫',
    Escape: 'Esc', Enter: 'Enter', ' ': 'Space', ctrl: 'Ctrl', shift: 'Shift',
  };
  return k.split('+').map((p) => names[p] ?? p).join('+');
}
