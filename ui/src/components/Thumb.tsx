/** A part's frame drawn small, with the anomaly-map overlay and its peaks. */
import { useEffect, useRef } from 'preact/hooks';
import type { Part } from '../api.js';
import { usePartImages } from './part-images.js';

export function Thumb({ part, heatmap = true, width = 240 }: { part: Part; heatmap?: boolean; width?: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const imgs = usePartImages(part);
  useEffect(() => {
    const c = ref.current;
    if (!c || !imgs?.image) return;
    const { image, overlay, peaks } = imgs;
    const scale = width / image.naturalWidth;
    c.width = width;
    c.height = Math.round(image.naturalHeight * scale);
    const ctx = c.getContext('2d')!;
    ctx.drawImage(image, 0, 0, c.width, c.height);
    if (heatmap && overlay) ctx.drawImage(overlay, 0, 0, c.width, c.height);
    if (heatmap) {
      ctx.strokeStyle = '#ffd54a';
      ctx.setLineDash([4, 3]);
      for (const p of peaks) ctx.strokeRect(p.x * scale, p.y * scale, p.w * scale, p.h * scale);
    }
  }, [imgs, heatmap, width]);
  if (!imgs) return <div class="thumb thumb-loading" style={{ width, height: width * 0.8 }} />;
  if (!imgs.image) return <div class="thumb thumb-missing" style={{ width, height: width * 0.8 }}>{imgs.error ?? 'no image'}</div>;
  return <canvas class="thumb" ref={ref} />;
}
