/**
 * Plain padded columns for the command line's human output (`models list`, `models report`,
 * `models history`); `--json` gives scripts the data instead. No table package is a declared
 * dependency, and a header row plus space-padded columns is all these need.
 */

export type Cell = string | number | null | undefined;

/** Left-aligned columns, two spaces apart, a header row and a dashed rule under it; trailing spaces trimmed. */
export function textTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell): string => (c === null || c === undefined ? '' : String(c));
  const all = [header.map(text), ...rows.map((r) => header.map((_, i) => text(r[i])))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n') + '\n';
}

/** "a of b (p %)" with one decimal; "–" for the share when b is 0. */
export function share(a: number, b: number): string {
  return b > 0 ? `${((100 * a) / b).toFixed(1)} %` : '–';
}
