/** Load a part's frame and anomaly map once and derive the overlay and peak regions (cached per part). */
import { useEffect, useState } from 'preact/hooks';
import { imageUrl, mapUrl, type Part } from '../api.js';
import { colourise, loadImage, mapValues, peakRegions, type PeakRegion } from './heatmap.js';

export interface PartImages { image: HTMLImageElement | null; overlay: HTMLCanvasElement | null; peaks: PeakRegion[]; error: string | null }

const cache = new Map<string, Promise<PartImages>>();


export function loadPartImages(p: Part): Promise<PartImages> {
  // an image still being written is cached as missing: the key changes once the server has it
  const k = `${p.runId}/${p.seq}/${p.hasImage ? 1 : 0}${p.hasMap ? 1 : 0}`;
  let hit = cache.get(k);
  if (!hit) {
    hit = (async () => {
      if (!p.hasImage) return { image: null, overlay: null, peaks: [], error: 'no image was saved for this part' };
      const [image, map] = await Promise.all([loadImage(imageUrl(p)), p.hasMap ? loadImage(mapUrl(p)).catch(() => null) : null]);
      if (!map) return { image, overlay: null, peaks: [], error: null };
      const values = mapValues(map);
      return { image, overlay: colourise(values), peaks: peakRegions(values, image.naturalWidth, image.naturalHeight), error: null };
    })().catch((e: Error) => ({ image: null, overlay: null, peaks: [], error: e.message }));
    cache.set(k, hit);
    if (cache.size > 40) cache.delete(cache.keys().next().value!);
  }
  return hit;
}

export function usePartImages(p: Part | null): PartImages | null {
  const [v, setV] = useState<PartImages | null>(null);
  useEffect(() => {
    setV(null);
    if (!p) return;
    let live = true;
    void loadPartImages(p).then((r) => { if (live) setV(r); });
    return () => { live = false; };
  }, [p?.runId, p?.seq, p?.hasImage, p?.hasMap]);
  return v;
}
