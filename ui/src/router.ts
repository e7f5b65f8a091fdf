/** Hash routes (`#/review?…`, `#/label/<runId>/<seq>`): the server only ever serves index.html. */
import { useEffect, useState } from 'preact/hooks';

export interface Route { page: string; params: string[]; query: URLSearchParams }

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path = '', q = ''] = raw.split('?');
  const [page = 'live', ...params] = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page, params, query: new URLSearchParams(q) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = (): void => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(path: string, replace = false): void {
  const h = `#${path.startsWith('/') ? path : `/${path}`}`;
  if (replace) history.replaceState(null, '', h);
  else location.hash = h;
  if (replace) dispatchEvent(new HashChangeEvent('hashchange'));
}

export const labelHref = (runId: string, seq: number, back = ''): string =>
  `#/label/${encodeURIComponent(runId)}/${seq}${back ? `?${back}` : ''}`;
