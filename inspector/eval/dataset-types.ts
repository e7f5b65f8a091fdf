/**
 * What a dataset reader yields: a flat list of labelled images with their
 * ground truth (pixel mask and/or boxes, in the image's own pixels).
 */

export type Layout = 'folder' | 'deeppcb' | 'magnetic_tile' | 'fixtures';
export const LAYOUTS: readonly Layout[] = ['folder', 'deeppcb', 'magnetic_tile', 'fixtures'];

/** Axis-aligned ground-truth box, [x1, x2) × [y1, y2) in image pixels. */
export interface GtBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** defect type of this box, when the dataset says */
  defectClass: string | null;
}

export interface EvalItem {
  /** stable id (path relative to the dataset root) */
  id: string;
  /** absolute image path */
  image: string;
  label: 'good' | 'defect';
  /** the image's defect class (null for good images) */
  defectClass: string | null;
  /** absolute mask path (>= 128 = defect), when there is one */
  mask: string | null;
  /** ground-truth boxes, when the dataset has them */
  boxes: GtBox[] | null;
  /** DeepPCB: the pair's template (a good image of the same board), absolute path */
  template?: string;
  /** DeepPCB: the pair id the template and the tested image share */
  pair?: string;
}

export interface EvalDataset {
  layout: Layout;
  /** absolute folder the items were read from (after --split) */
  root: string;
  split: string | null;
  items: EvalItem[];
  /** defect classes present, sorted */
  classes: string[];
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff'];

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

export function classesOf(items: readonly EvalItem[]): string[] {
  const s = new Set<string>();
  for (const it of items) if (it.defectClass) s.add(it.defectClass);
  return [...s].sort();
}
