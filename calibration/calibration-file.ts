/**
 * The station's calibration file, versioned.
 *
 * Layout of the calibration folder (default `var/calibration/`):
 *   v000001.json, v000002.json, …   every save, complete and never rewritten
 *   current.json                    { "version": n }: the pointer the station loads
 *
 * A save takes the current version, applies a patch of sections (lens, plane,
 * roi, checks, golden; `null` removes one) and writes it as the next version,
 * then moves the pointer. `activate(n)` moves the pointer back (rollback)
 * without losing anything. Version files are created exclusively (`wx`) and
 * the pointer is replaced atomically (write + rename).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CalibrationFileInvalidError, CalibrationVersionNotFoundError } from './errors.js';

const Num = Type.Number();
export const CameraModelSchema = Type.Object({
  fx: Num, fy: Num, cx: Num, cy: Num,
  dist: Type.Tuple([Num, Num, Num, Num, Num], { description: 'k1, k2, p1, p2, k3' }),
});
const Size = Type.Object({ width: Type.Integer({ minimum: 1 }), height: Type.Integer({ minimum: 1 }) });
const Pt = Type.Object({ x: Num, y: Num });
export const BoardSchema = Type.Object({
  cols: Type.Integer({ minimum: 3 }), rows: Type.Integer({ minimum: 3 }), squareMm: Type.Number({ exclusiveMinimum: 0 }),
});

export const LensSection = Type.Object({
  camera: CameraModelSchema,
  imageSize: Size,
  board: BoardSchema,
  rms: Type.Number({ minimum: 0, description: 'RMS reprojection error, px' }),
  views: Type.Integer({ minimum: 1 }),
  distinctViews: Type.Integer({ minimum: 1 }),
});
export const PlaneSection = Type.Object({
  homography: Type.Array(Num, { minItems: 9, maxItems: 9, description: 'image px → plane mm, row-major' }),
  undistorted: Type.Boolean(),
  source: Type.Union([Type.Literal('board'), Type.Literal('points')]),
  mmPerPx: Type.Number({ exclusiveMinimum: 0 }),
  mmPerPxX: Type.Number({ exclusiveMinimum: 0 }),
  mmPerPxY: Type.Number({ exclusiveMinimum: 0 }),
  residualMm: Type.Number({ minimum: 0 }),
  imagePoints: Type.Array(Pt),
  planePoints: Type.Array(Pt),
});
export const RoiSection = Type.Object({
  x: Type.Integer({ minimum: 0 }), y: Type.Integer({ minimum: 0 }),
  width: Type.Integer({ minimum: 1 }), height: Type.Integer({ minimum: 1 }),
});
export const ChecksSection = Type.Object({
  reference: Type.Object({ tenengrad: Num, laplacianVar: Num, mean: Num, saturatedFraction: Num, darkFraction: Num }),
  bands: Type.Object({
    sharpnessDropMax: Type.Number({ minimum: 0, maximum: 1 }),
    meanDeltaMax: Type.Number({ minimum: 0 }),
    saturatedMax: Type.Number({ minimum: 0, maximum: 1 }),
  }),
});
export const GoldenSection = Type.Object({
  /** where the golden reference image lives (a model package's reference.png, or a file) */
  reference: Type.String(),
  note: Type.Optional(Type.String()),
});

export const CalibrationDoc = Type.Object({
  schema: Type.Literal(1),
  station: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  createdAt: Type.String(),
  createdBy: Type.String(),
  note: Type.Optional(Type.String()),
  frame: Size,
  lens: Type.Optional(LensSection),
  plane: Type.Optional(PlaneSection),
  roi: Type.Optional(RoiSection),
  checks: Type.Optional(ChecksSection),
  golden: Type.Optional(GoldenSection),
});
export type CalibrationDoc = Static<typeof CalibrationDoc>;
export type LensSection = Static<typeof LensSection>;
export type PlaneSection = Static<typeof PlaneSection>;
export type RoiSection = Static<typeof RoiSection>;
export type ChecksSection = Static<typeof ChecksSection>;
export type GoldenSection = Static<typeof GoldenSection>;

export const SECTIONS = ['lens', 'plane', 'roi', 'checks', 'golden'] as const;
export type SectionName = (typeof SECTIONS)[number];
export type CalibrationPatch = { [K in SectionName]?: CalibrationDoc[K] | null };

export interface VersionInfo { version: number; createdAt: string; createdBy: string; note?: string; sections: SectionName[]; current: boolean }

const versionFile = (n: number): string => `v${String(n).padStart(6, '0')}.json`;

export class CalibrationStore {
  constructor(readonly dir: string, readonly station = 'station-1', readonly frame = { width: 1280, height: 1024 }) {}

  /** The version the pointer names, or null before the first save. */
  current(): CalibrationDoc | null {
    const n = this.currentVersion();
    return n === null ? null : this.get(n);
  }

  currentVersion(): number | null {
    const p = join(this.dir, 'current.json');
    if (!existsSync(p)) return null;
    const raw = this.readJson(p) as { version?: unknown };
    if (!Number.isInteger(raw.version)) throw new CalibrationFileInvalidError(p, 'current.json has no integer "version"');
    return raw.version as number;
  }

  get(version: number): CalibrationDoc {
    const p = join(this.dir, versionFile(version));
    if (!existsSync(p)) throw new CalibrationVersionNotFoundError(`version ${version} in ${this.dir}`);
    const doc = this.readJson(p);
    if (!Value.Check(CalibrationDoc, doc)) {
      const e = [...Value.Errors(CalibrationDoc, doc)].slice(0, 3).map((x) => `${x.path || '/'}: ${x.message}`).join('; ');
      throw new CalibrationFileInvalidError(p, e);
    }
    return doc;
  }

  versions(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).map((f) => /^v(\d{6})\.json$/.exec(f)).filter((m) => m !== null)
      .map((m) => parseInt(m![1]!, 10)).sort((a, b) => a - b);
  }

  list(): VersionInfo[] {
    const cur = this.currentVersion();
    return this.versions().map((v) => {
      const d = this.get(v);
      return { version: v, createdAt: d.createdAt, createdBy: d.createdBy, ...(d.note ? { note: d.note } : {}),
        sections: SECTIONS.filter((s) => d[s] !== undefined), current: v === cur };
    });
  }

  /** Write the current document with `patch` applied as the next version and point at it. */
  save(patch: CalibrationPatch, who: { actor: string; note?: string }): CalibrationDoc {
    mkdirSync(this.dir, { recursive: true });
    const base = this.current();
    for (;;) {
      const version = (this.versions().at(-1) ?? 0) + 1;
      const doc: Record<string, unknown> = {
        schema: 1, station: this.station, version, createdAt: new Date().toISOString(), createdBy: who.actor,
        ...(who.note ? { note: who.note } : {}), frame: base?.frame ?? this.frame,
      };
      for (const s of SECTIONS) {
        const v = s in patch ? patch[s] : base?.[s];
        if (v !== undefined && v !== null) doc[s] = v;
      }
      if (!Value.Check(CalibrationDoc, doc)) {
        const e = [...Value.Errors(CalibrationDoc, doc)].slice(0, 3).map((x) => `${x.path || '/'}: ${x.message}`).join('; ');
        throw new CalibrationFileInvalidError(`version ${version}`, e);
      }
      try {
        writeFileSync(join(this.dir, versionFile(version)), JSON.stringify(doc, null, 2) + '\n', { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // another writer took this number
        throw err;
      }
      this.point(version);
      return doc as CalibrationDoc;
    }
  }

  /** Point the station at an existing version (rollback / roll forward). */
  activate(version: number): CalibrationDoc {
    const doc = this.get(version);
    this.point(version);
    return doc;
  }

  private point(version: number): void {
    const tmp = join(this.dir, `.current.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify({ version }) + '\n');
    renameSync(tmp, join(this.dir, 'current.json'));
  }

  private readJson(p: string): unknown {
    try {
      return JSON.parse(readFileSync(p, 'utf8'));
    } catch (err) {
      throw new CalibrationFileInvalidError(p, (err as Error).message);
    }
  }
}
