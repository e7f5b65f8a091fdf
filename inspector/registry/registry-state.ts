/**
 * The registry's pointers (live, shadow, the rollback stack) and its change
 * history, kept in one small JSON file validated with TypeBox and written
 * atomically (temp file + fsync + rename). Written by the station's main
 * thread only, on model operations — never on the hot path.
 */
import { mkdirSync, openSync, closeSync, fsyncSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { RegistryStateError } from './errors.js';

export const ModelRef = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' }),
  version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }),
}, { additionalProperties: false });
export type ModelRef = Static<typeof ModelRef>;

export const RegistryAction = Type.Union(['push', 'promote', 'refuse', 'rollback', 'shadow', 'unshadow', 'delete', 'adopt']
  .map((a) => Type.Literal(a)));
export type RegistryAction = 'push' | 'promote' | 'refuse' | 'rollback' | 'shadow' | 'unshadow' | 'delete' | 'adopt';

export const RegistryEvent = Type.Object({
  at: Type.String({ description: 'ISO time' }),
  actor: Type.String(),
  action: RegistryAction,
  model: Type.Union([ModelRef, Type.Null()]),
  detail: Type.Optional(Type.String()),
  /** push, promote, shadow: the key id the package is signed with (null: unsigned, where signatures are not required) */
  signer: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type RegistryEvent = Static<typeof RegistryEvent>;

export const RegistryStateFile = Type.Object({
  version: Type.Literal(1),
  live: Type.Union([ModelRef, Type.Null()]),
  shadow: Type.Union([ModelRef, Type.Null()]),
  /** models that were live before, most recent last: rollback pops it */
  previous: Type.Array(ModelRef),
  history: Type.Array(RegistryEvent),
});
export type RegistryStateFile = Static<typeof RegistryStateFile>;

/** Events kept in the file (older ones are dropped; the audit trail keeps everything). */
const MAX_HISTORY = 500;

export const refKey = (r: ModelRef): string => `${r.name}@${r.version}`;
export const sameRef = (a: ModelRef | null, b: ModelRef | null): boolean => !!a && !!b && a.name === b.name && a.version === b.version;

export class RegistryState {
  private constructor(private readonly path: string, private data: RegistryStateFile) {}

  static open(path: string): RegistryState {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return new RegistryState(path, { version: 1, live: null, shadow: null, previous: [], history: [] });
      }
      throw new RegistryStateError(`${path}: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new RegistryStateError(`${path}: not JSON (${(err as Error).message})`);
    }
    if (!Value.Check(RegistryStateFile, json)) {
      const e = [...Value.Errors(RegistryStateFile, json)].slice(0, 3).map((x) => `${x.path || '/'}: ${x.message}`).join('; ');
      throw new RegistryStateError(`${path}: ${e}`);
    }
    return new RegistryState(path, json);
  }

  get live(): ModelRef | null { return this.data.live; }
  get shadow(): ModelRef | null { return this.data.shadow; }
  get previous(): readonly ModelRef[] { return this.data.previous; }
  get history(): readonly RegistryEvent[] { return this.data.history; }
  snapshot(): RegistryStateFile { return structuredClone(this.data); }

  /** Apply a change and the event that records it, then write the file atomically. */
  change(event: Omit<RegistryEvent, 'at'>, mutate: (d: RegistryStateFile) => void = () => undefined): RegistryEvent {
    const next = structuredClone(this.data);
    mutate(next);
    const e: RegistryEvent = { at: new Date().toISOString(), ...event };
    next.history.push(e);
    if (next.history.length > MAX_HISTORY) next.history.splice(0, next.history.length - MAX_HISTORY);
    this.write(next);
    this.data = next;
    return e;
  }

  private write(d: RegistryStateFile): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, `${JSON.stringify(d, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
