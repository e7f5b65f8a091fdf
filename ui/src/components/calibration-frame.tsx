/**
 * The live camera frame for calibration (`/api/live/frame.jpg`, refreshed every
 * `everyMs` unless frozen) with an SVG overlay in FRAME pixels: the ROI, a
 * rectangle being dragged, and marked points. Tools: 'rect' (drag a rectangle),
 * 'points' (click to mark a point), 'none'. Coordinates given to the callbacks
 * are full-resolution frame pixels, whatever size the picture is shown at.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CalPoint, CalRoi } from '../api.js';

export type FrameTool = 'rect' | 'points' | 'none';

export interface CalibrationFrameProps {
  frame: { width: number; height: number };
  tool: FrameTool;
  frozen: boolean;
  everyMs?: number;
  /** rectangles to show: the stored ROI and/or the draft */
  rects: Array<{ roi: CalRoi; kind: 'stored' | 'draft' }>;
  points: CalPoint[];
  onRect?: (r: CalRoi) => void;
  onPoint?: (p: CalPoint) => void;
}

const clampInt = (v: number, lo: number, hi: number): number => Math.round(Math.min(Math.max(v, lo), hi));

export function CalibrationFrame(props: CalibrationFrameProps) {
  const { frame, tool } = props;
  const [tick, setTick] = useState(0);
  const [failed, setFailed] = useState(false);
  const [drag, setDrag] = useState<{ x0: number; y0: number; x1: number; y1: number } | null>(null);
  const svg = useRef<SVGSVGElement>(null);
  useEffect(() => {
    if (props.frozen) return;
    const t = setInterval(() => setTick((n) => n + 1), props.everyMs ?? 1000);
    return () => clearInterval(t);
  }, [props.frozen, props.everyMs]);

  const toFrame = (e: MouseEvent): CalPoint => {
    const r = svg.current!.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * frame.width, y: ((e.clientY - r.top) / r.height) * frame.height };
  };
  const down = (e: MouseEvent): void => {
    if (e.button !== 0) return;
    const p = toFrame(e);
    if (tool === 'points') { props.onPoint?.({ x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10 }); return; }
    if (tool === 'rect') { e.preventDefault(); setDrag({ x0: p.x, y0: p.y, x1: p.x, y1: p.y }); }
  };
  const move = (e: MouseEvent): void => {
    if (!drag) return;
    const p = toFrame(e);
    setDrag({ ...drag, x1: p.x, y1: p.y });
  };
  const up = (): void => {
    if (!drag) return;
    const x = clampInt(Math.min(drag.x0, drag.x1), 0, frame.width - 1);
    const y = clampInt(Math.min(drag.y0, drag.y1), 0, frame.height - 1);
    const x2 = clampInt(Math.max(drag.x0, drag.x1), 0, frame.width);
    const y2 = clampInt(Math.max(drag.y0, drag.y1), 0, frame.height);
    setDrag(null);
    if (x2 - x >= 4 && y2 - y >= 4) props.onRect?.({ x, y, width: x2 - x, height: y2 - y });
  };
  const stroke = Math.max(2, frame.width / 400);
  const rects = [...props.rects];
  if (drag) rects.push({ kind: 'draft', roi: { x: Math.min(drag.x0, drag.x1), y: Math.min(drag.y0, drag.y1), width: Math.abs(drag.x1 - drag.x0), height: Math.abs(drag.y1 - drag.y0) } });

  return (
    <div class={`calib-frame tool-${tool}`} style={{ aspectRatio: `${frame.width} / ${frame.height}` }} data-testid="calib-frame">
      {failed ? <div class="calib-frame-missing muted">no live frame (is the camera running?)</div> : null}
      <img src={`/api/live/frame.jpg?width=960&t=${tick}`} alt="live frame" draggable={false}
        onLoad={() => setFailed(false)} onError={() => setFailed(true)} />
      <svg ref={svg} viewBox={`0 0 ${frame.width} ${frame.height}`} preserveAspectRatio="none"
        onMouseDown={down} onMouseMove={move} onMouseUp={up} onMouseLeave={up} data-testid="calib-overlay">
        {rects.map((r, i) => (
          <g key={i} class={`roi roi-${r.kind}`}>
            <rect x={r.roi.x} y={r.roi.y} width={r.roi.width} height={r.roi.height} stroke-width={stroke} />
            <text x={r.roi.x + stroke * 2} y={r.roi.y + frame.height / 28} font-size={frame.height / 36}>
              {r.kind === 'stored' ? 'ROI' : 'new ROI'} {Math.round(r.roi.width)}×{Math.round(r.roi.height)}
            </text>
          </g>
        ))}
        {props.points.length > 1 ? <polygon class="plane-quad" points={props.points.map((p) => `${p.x},${p.y}`).join(' ')} stroke-width={stroke} /> : null}
        {props.points.map((p, i) => (
          <g key={i} class="plane-pt">
            <circle cx={p.x} cy={p.y} r={stroke * 4} stroke-width={stroke} />
            <text x={p.x + stroke * 5} y={p.y - stroke * 4} font-size={frame.height / 32}>{i + 1}</text>
          </g>
        ))}
      </svg>
    </div>
  );
}
