/**
 * Canvas viewer and region editor for one part image at full resolution.
 *  - zoom with the wheel (around the cursor), pan with Space+drag or middle-drag, `0` fits
 *  - heatmap overlay (the anomaly map, coloured) and the map's peak regions
 *  - tools: select (click, drag to move, drag a handle to resize / move a vertex),
 *    box (drag), polygon (click points, Enter or a click on the first point closes, Esc cancels)
 *  - Del / Backspace deletes the selected region
 *  - each region carries a tag with its class name (`classTag`: the label's class), as
 *    DOM elements over the canvas so the text stays sharp at any zoom and can be read
 *    by assistive tech and tests
 * Edits are reported once, when the gesture ends (`onChange`), so each saved
 * revision is one whole action.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { Region } from '../api.js';
import type { PeakRegion } from './heatmap.js';
import { useKeys } from './keys.js';

export type Tool = 'select' | 'box' | 'polygon';

export interface ImageViewerProps {
  image: HTMLImageElement | null;
  overlay: HTMLCanvasElement | null;
  showHeatmap: boolean;
  peaks: PeakRegion[];
  regions: Region[];
  selectedId: string | null;
  tool: Tool;
  onSelect: (id: string | null) => void;
  onChange: (regions: Region[]) => void;
  onToolDone: () => void;
  colour: string;
  /** the class name shown on every region (null: no tags) */
  classTag?: string | null;
}

interface View { scale: number; ox: number; oy: number }
type Drag =
  | { kind: 'pan'; sx: number; sy: number; ox: number; oy: number }
  | { kind: 'draw-box'; x0: number; y0: number; x1: number; y1: number }
  | { kind: 'move'; id: string; x0: number; y0: number; orig: Region; moved: boolean }
  | { kind: 'handle'; id: string; handle: number; orig: Region; moved: boolean };

const HANDLE_PX = 7;
export const newRegionId = (): string => `r-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/** Box handles: 0 nw, 1 n, 2 ne, 3 e, 4 se, 5 s, 6 sw, 7 w. Which edges each one moves. */
const HANDLE_EDGES: Array<{ l?: 1; r?: 1; t?: 1; b?: 1 }> = [
  { l: 1, t: 1 }, { t: 1 }, { r: 1, t: 1 }, { r: 1 }, { r: 1, b: 1 }, { b: 1 }, { l: 1, b: 1 }, { l: 1 },
];
function boxHandles(r: { x: number; y: number; w: number; h: number }): Array<[number, number]> {
  const { x, y, w, h } = r;
  return [[x, y], [x + w / 2, y], [x + w, y], [x + w, y + h / 2], [x + w, y + h], [x + w / 2, y + h], [x, y + h], [x, y + h / 2]];
}
function handlesOf(r: Region): Array<[number, number]> {
  return r.kind === 'box' ? boxHandles(r) : r.points;
}
function inside(r: Region, x: number, y: number): boolean {
  if (r.kind === 'box') return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h;
  let hit = false;
  const p = r.points;
  for (let i = 0, j = p.length - 1; i < p.length; j = i++) {
    const [xi, yi] = p[i]!, [xj, yj] = p[j]!;
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}
const round = (v: number): number => Math.round(v * 10) / 10;

export function ImageViewer(props: ImageViewerProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const view = useRef<View>({ scale: 1, ox: 0, oy: 0 });
  const drag = useRef<Drag | null>(null);
  const live = useRef<Region[] | null>(null); // regions while a gesture is under way
  const poly = useRef<Array<[number, number]>>([]);
  const hover = useRef<[number, number] | null>(null);
  const space = useRef(false);
  const fitted = useRef<HTMLImageElement | null>(null);
  const p = useRef(props);
  p.current = props;
  const frame = useRef(0);
  const tags = useRef<HTMLDivElement>(null);

  const imgSize = (): [number, number] => {
    const im = p.current.image;
    return im ? [im.naturalWidth, im.naturalHeight] : [1280, 1024];
  };
  const toImage = (sx: number, sy: number): [number, number] => {
    const v = view.current;
    return [(sx - v.ox) / v.scale, (sy - v.oy) / v.scale];
  };
  const clampPt = ([x, y]: [number, number]): [number, number] => {
    const [w, h] = imgSize();
    return [round(Math.max(0, Math.min(w, x))), round(Math.max(0, Math.min(h, y)))];
  };

  const fit = (): void => {
    const c = canvas.current;
    if (!c) return;
    const [w, h] = imgSize();
    const cw = c.clientWidth, ch = c.clientHeight;
    const scale = Math.min(cw / w, ch / h) * 0.98;
    view.current = { scale, ox: (cw - w * scale) / 2, oy: (ch - h * scale) / 2 };
    schedule();
  };

  const zoomAt = (sx: number, sy: number, factor: number): void => {
    const v = view.current;
    const scale = Math.max(0.05, Math.min(40, v.scale * factor));
    const k = scale / v.scale;
    view.current = { scale, ox: sx - (sx - v.ox) * k, oy: sy - (sy - v.oy) * k };
    schedule();
  };

  const schedule = (): void => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => { frame.current = 0; render(); });
  };

  const render = (): void => {
    const c = canvas.current;
    if (!c) return;
    const dpr = devicePixelRatio || 1;
    const cw = c.clientWidth, ch = c.clientHeight;
    if (c.width !== Math.round(cw * dpr) || c.height !== Math.round(ch * dpr)) {
      c.width = Math.round(cw * dpr);
      c.height = Math.round(ch * dpr);
    }
    const ctx = c.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#101317';
    ctx.fillRect(0, 0, c.width, c.height);
    const { image, overlay, showHeatmap, peaks, selectedId, colour } = p.current;
    const v = view.current;
    const [iw, ih] = imgSize();
    ctx.setTransform(dpr * v.scale, 0, 0, dpr * v.scale, dpr * v.ox, dpr * v.oy);
    ctx.imageSmoothingEnabled = v.scale < 2;
    if (image) ctx.drawImage(image, 0, 0);
    if (overlay && showHeatmap) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(overlay, 0, 0, iw, ih);
    }
    const px = 1 / v.scale; // one screen pixel in image units
    if (showHeatmap) {
      ctx.setLineDash([6 * px, 4 * px]);
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = '#ffd54a';
      ctx.font = `${12 * px}px system-ui, sans-serif`;
      ctx.fillStyle = '#ffd54a';
      for (const pk of peaks) {
        ctx.strokeRect(pk.x, pk.y, pk.w, pk.h);
        ctx.fillText(`peak ${pk.peak.toFixed(2)}`, pk.x, pk.y - 4 * px);
      }
      ctx.setLineDash([]);
    }
    const regions = live.current ?? p.current.regions;
    for (const r of regions) {
      const sel = r.id === selectedId;
      ctx.lineWidth = (sel ? 2.5 : 2) * px;
      ctx.strokeStyle = sel ? '#ffffff' : colour;
      ctx.fillStyle = sel ? 'rgba(255,255,255,0.12)' : 'rgba(80,200,255,0.10)';
      ctx.beginPath();
      if (r.kind === 'box') ctx.rect(r.x, r.y, r.w, r.h);
      else {
        r.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
      }
      ctx.fill();
      ctx.stroke();
      if (sel) {
        ctx.fillStyle = '#ffffff';
        for (const [hx, hy] of handlesOf(r)) ctx.fillRect(hx - 4 * px, hy - 4 * px, 8 * px, 8 * px);
      }
    }
    const d = drag.current;
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1.5 * px;
    if (d?.kind === 'draw-box') {
      ctx.setLineDash([5 * px, 3 * px]);
      ctx.strokeRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
      ctx.setLineDash([]);
    }
    if (poly.current.length) {
      const pts = poly.current;
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (hover.current) ctx.lineTo(hover.current[0], hover.current[1]);
      ctx.stroke();
      ctx.fillStyle = '#ffffff';
      for (const [x, y] of pts) ctx.fillRect(x - 3 * px, y - 3 * px, 6 * px, 6 * px);
    }
    placeTags(regions, v);
    c.style.cursor = space.current || d?.kind === 'pan' ? 'grabbing' : p.current.tool === 'select' ? 'default' : 'crosshair';
  };

  /** One tag per region at its top-left corner (in screen pixels), text = the class. */
  const placeTags = (regions: Region[], v: View): void => {
    const layer = tags.current;
    if (!layer) return;
    const text = p.current.classTag;
    const want = text ? regions.length : 0;
    while (layer.children.length > want) layer.lastChild!.remove();
    while (layer.children.length < want) {
      const el = document.createElement('span');
      el.className = 'region-tag';
      el.dataset.testid = 'region-tag';
      layer.appendChild(el);
    }
    regions.slice(0, want).forEach((r, i) => {
      const el = layer.children[i] as HTMLSpanElement;
      const [x, y] = r.kind === 'box' ? [r.x, r.y] : r.points.reduce(([mx, my], [px, py]) => [Math.min(mx, px), Math.min(my, py)], [Infinity, Infinity]);
      if (el.textContent !== text) el.textContent = text!;
      el.dataset.region = r.id;
      el.style.transform = `translate(${Math.round(v.ox + x * v.scale)}px, ${Math.round(v.oy + y * v.scale)}px) translateY(-100%)`;
      el.style.background = r.id === p.current.selectedId ? '#ffffff' : p.current.colour;
    });
  };

  const closePolygon = (): void => {
    const pts = poly.current;
    poly.current = [];
    if (pts.length >= 3) {
      const r: Region = { id: newRegionId(), kind: 'polygon', points: pts };
      p.current.onChange([...p.current.regions, r]);
      p.current.onSelect(r.id);
    }
    p.current.onToolDone();
    schedule();
  };

  const hitTest = (x: number, y: number): { id: string; handle: number | null } | null => {
    const tol = HANDLE_PX / view.current.scale;
    const regions = p.current.regions;
    const sel = regions.find((r) => r.id === p.current.selectedId);
    if (sel) {
      const hs = handlesOf(sel);
      for (let i = 0; i < hs.length; i++) {
        if (Math.abs(hs[i]![0] - x) <= tol && Math.abs(hs[i]![1] - y) <= tol) return { id: sel.id, handle: i };
      }
    }
    for (let i = regions.length - 1; i >= 0; i--) if (inside(regions[i]!, x, y)) return { id: regions[i]!.id, handle: null };
    return null;
  };

  useEffect(() => {
    const c = canvas.current!;
    const local = (e: MouseEvent): [number, number] => {
      const b = c.getBoundingClientRect();
      return [e.clientX - b.left, e.clientY - b.top];
    };
    const down = (e: MouseEvent): void => {
      const [sx, sy] = local(e);
      if (e.button === 1 || (e.button === 0 && space.current)) {
        e.preventDefault();
        drag.current = { kind: 'pan', sx, sy, ox: view.current.ox, oy: view.current.oy };
        schedule();
        return;
      }
      if (e.button !== 0) return;
      const [x, y] = clampPt(toImage(sx, sy));
      const tool = p.current.tool;
      if (tool === 'box') {
        drag.current = { kind: 'draw-box', x0: x, y0: y, x1: x, y1: y };
      } else if (tool === 'polygon') {
        const pts = poly.current;
        const first = pts[0];
        const tol = HANDLE_PX / view.current.scale;
        if (first && pts.length >= 3 && Math.abs(first[0] - x) <= tol && Math.abs(first[1] - y) <= tol) closePolygon();
        else pts.push([x, y]);
      } else {
        const hit = hitTest(x, y);
        p.current.onSelect(hit?.id ?? null);
        const orig = hit && p.current.regions.find((r) => r.id === hit.id);
        if (hit && orig) {
          drag.current = hit.handle === null
            ? { kind: 'move', id: hit.id, x0: x, y0: y, orig, moved: false }
            : { kind: 'handle', id: hit.id, handle: hit.handle, orig, moved: false };
        }
      }
      schedule();
    };
    const move = (e: MouseEvent): void => {
      const [sx, sy] = local(e);
      const d = drag.current;
      const [x, y] = clampPt(toImage(sx, sy));
      hover.current = [x, y];
      if (!d) { if (poly.current.length) schedule(); return; }
      if (d.kind === 'pan') {
        view.current = { ...view.current, ox: d.ox + sx - d.sx, oy: d.oy + sy - d.sy };
      } else if (d.kind === 'draw-box') {
        d.x1 = x; d.y1 = y;
      } else {
        d.moved = true;
        const edited = d.kind === 'move' ? translated(d.orig, x - d.x0, y - d.y0) : reshaped(d.orig, d.handle, x, y);
        live.current = p.current.regions.map((r) => (r.id === d.id ? edited : r));
      }
      schedule();
    };
    const up = (): void => {
      const d = drag.current;
      drag.current = null;
      if (d?.kind === 'draw-box') {
        const x = Math.min(d.x0, d.x1), y = Math.min(d.y0, d.y1), w = Math.abs(d.x1 - d.x0), h = Math.abs(d.y1 - d.y0);
        if (w >= 3 && h >= 3) {
          const r: Region = { id: newRegionId(), kind: 'box', x: round(x), y: round(y), w: round(w), h: round(h) };
          p.current.onChange([...p.current.regions, r]);
          p.current.onSelect(r.id);
        }
        p.current.onToolDone();
      } else if ((d?.kind === 'move' || d?.kind === 'handle') && d.moved && live.current) {
        p.current.onChange(live.current);
      }
      live.current = null;
      schedule();
    };
    const wheel = (e: WheelEvent): void => {
      e.preventDefault();
      const [sx, sy] = local(e);
      zoomAt(sx, sy, Math.pow(1.0015, -e.deltaY));
    };
    const spaceDown = (e: KeyboardEvent): void => {
      if (e.key === ' ' && !(e.target as HTMLElement).closest?.('input,textarea,select,button')) { space.current = true; e.preventDefault(); schedule(); }
    };
    const spaceUp = (e: KeyboardEvent): void => { if (e.key === ' ') { space.current = false; schedule(); } };
    const aux = (e: MouseEvent): void => { if (e.button === 1) e.preventDefault(); };
    c.addEventListener('mousedown', down);
    c.addEventListener('auxclick', aux);
    addEventListener('mousemove', move);
    addEventListener('mouseup', up);
    c.addEventListener('wheel', wheel, { passive: false });
    addEventListener('keydown', spaceDown);
    addEventListener('keyup', spaceUp);
    const ro = new ResizeObserver(() => { if (fitted.current) schedule(); else fit(); });
    ro.observe(wrap.current!);
    return () => {
      c.removeEventListener('mousedown', down);
      c.removeEventListener('auxclick', aux);
      removeEventListener('mousemove', move);
      removeEventListener('mouseup', up);
      c.removeEventListener('wheel', wheel);
      removeEventListener('keydown', spaceDown);
      removeEventListener('keyup', spaceUp);
      ro.disconnect();
      cancelAnimationFrame(frame.current);
    };
  }, []);

  // fit each new image once; redraw on every prop change
  useEffect(() => {
    if (props.image && fitted.current !== props.image) { fitted.current = props.image; fit(); }
    if (props.tool !== 'polygon' && poly.current.length) poly.current = [];
    schedule();
  });

  useKeys('Viewer', [
    { keys: ['Enter'], help: 'close the polygon', run: () => closePolygon(), when: () => poly.current.length > 0 },
    { keys: ['Escape'], help: 'cancel drawing / deselect', run: () => { poly.current = []; drag.current = null; live.current = null; p.current.onSelect(null); p.current.onToolDone(); schedule(); } },
    {
      keys: ['Delete', 'Backspace'], help: 'delete the selected region',
      when: () => p.current.selectedId !== null,
      run: () => { p.current.onChange(p.current.regions.filter((r) => r.id !== p.current.selectedId)); p.current.onSelect(null); },
    },
    { keys: ['0'], help: 'fit the image', run: () => fit() },
    { keys: ['+', '='], help: 'zoom in', run: () => { const c = canvas.current!; zoomAt(c.clientWidth / 2, c.clientHeight / 2, 1.25); } },
    { keys: ['-'], help: 'zoom out', run: () => { const c = canvas.current!; zoomAt(c.clientWidth / 2, c.clientHeight / 2, 0.8); } },
    { keys: [' '], help: 'hold + drag to pan (or middle-drag); wheel zooms', run: () => undefined, when: () => false },
  ]);

  return (
    <div class="viewer" ref={wrap}>
      <canvas ref={canvas} data-testid="viewer-canvas" onContextMenu={(e) => e.preventDefault()} />
      <div class="region-tags" ref={tags} aria-label="region classes" />
    </div>
  );
}

function translated(r: Region, dx: number, dy: number): Region {
  if (r.kind === 'box') return { ...r, x: round(r.x + dx), y: round(r.y + dy) };
  return { ...r, points: r.points.map(([x, y]) => [round(x + dx), round(y + dy)] as [number, number]) };
}

function reshaped(r: Region, handle: number, x: number, y: number): Region {
  if (r.kind === 'polygon') return { ...r, points: r.points.map((pt, i) => (i === handle ? [x, y] : pt) as [number, number]) };
  const e = HANDLE_EDGES[handle]!;
  let l = r.x, t = r.y, rr = r.x + r.w, b = r.y + r.h;
  if (e.l) l = x;
  if (e.r) rr = x;
  if (e.t) t = y;
  if (e.b) b = y;
  return { ...r, x: round(Math.min(l, rr)), y: round(Math.min(t, b)), w: round(Math.abs(rr - l)), h: round(Math.abs(b - t)) };
}
