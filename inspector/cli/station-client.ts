/**
 * The command line's client of a station's HTTP API (`inspector models …`, the fleet rollout).
 *
 * A station serves HTTPS with a self-signed certificate by default (server/tls.ts), so the client
 * trusts one of:
 *   --ca FILE (INSPECTOR_CA)                  a CA certificate (PEM): the plant's CA, or the
 *                                             station's own cert.pem; the host name must match it
 *   --fingerprint SHA256 (INSPECTOR_FINGERPRINT)  the station certificate's SHA-256, as the station
 *                                             printed it at start (and /health shows it)
 *   neither                                   the system's CAs (a plant CA installed there)
 * There is no "accept any certificate". Pinning opens the TLS connection first, compares the
 * certificate the station presents with the pin, and only then hands that verified socket to the
 * HTTP request: not a byte of the request (or its token) is written to a station that does not match.
 *
 * Node's https module rather than fetch: Node 20's fetch takes no CA or pin (that needs undici's
 * Agent, which is not installed as a package here).
 *
 * Failures say what was tried, why it failed and what to do (StationUnreachableError,
 * StationUntrustedError, a 401 with how to get a token); main.ts prints `code: message`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import type { Command } from 'commander';
import { normalizeFingerprint } from '../server/tls.js';

export const DEFAULT_STATION_URL = 'https://127.0.0.1:8080';

export interface StationConn {
  url: string;
  token?: string;
  /** CA certificate(s), PEM text */
  ca?: string;
  /** where `ca` came from (for messages) */
  caFile?: string;
  /** pinned SHA-256 of the station's certificate, "AB:CD:…" */
  fingerprint?: string;
  /** idle time before a request is given up (default 10 min: a promotion runs the validation gate) */
  timeoutMs?: number;
}

export interface StationConnOptions { url?: string; token?: string; ca?: string; fingerprint?: string }

const fail = (code: string, message: string): Error => Object.assign(new Error(message), { code });

/** A connection from explicit options (the stations file of a fleet, tests); a CA file is read here. */
export function stationConn(o: StationConnOptions): StationConn {
  const c: StationConn = { url: (o.url ?? DEFAULT_STATION_URL).replace(/\/+$/, '') };
  if (o.token) c.token = o.token;
  if (o.ca) {
    try {
      c.ca = readFileSync(o.ca, 'utf8');
    } catch (err) {
      throw fail('INSPECTOR_USAGE', `--ca ${o.ca}: ${(err as Error).message}`);
    }
    if (!c.ca.includes('-----BEGIN CERTIFICATE-----')) throw fail('INSPECTOR_USAGE', `--ca ${o.ca}: not a PEM certificate`);
    c.caFile = o.ca;
  }
  if (o.fingerprint) c.fingerprint = normalizeFingerprint(o.fingerprint);
  return c;
}

/** --url, --token, --ca, --fingerprint of a command (or its parents), else INSPECTOR_URL / _TOKEN / _CA / _FINGERPRINT. */
export function connection(cmd: Command): StationConn {
  const o = cmd.optsWithGlobals<StationConnOptions>();
  const e = process.env;
  return stationConn({
    url: o.url ?? e.INSPECTOR_URL, token: o.token ?? e.INSPECTOR_TOKEN,
    ca: o.ca ?? e.INSPECTOR_CA, fingerprint: o.fingerprint ?? e.INSPECTOR_FINGERPRINT,
  });
}

/** The connection options every station command takes. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `station address (default INSPECTOR_URL or ${DEFAULT_STATION_URL})`)
    .option('--token <token>', 'bearer token (default INSPECTOR_TOKEN)')
    .option('--ca <file>', 'trust this CA certificate (PEM) for HTTPS (default INSPECTOR_CA)')
    .option('--fingerprint <sha256>', 'trust the station certificate with this SHA-256 fingerprint, as the station printed it (default INSPECTOR_FINGERPRINT)');
}

const CERT_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'INSPECTOR_PIN_MISMATCH']);

function hostOf(u: URL): string { return u.hostname.replace(/^\[|\]$/g, ''); }
function portOf(u: URL): number { return Number(u.port) || (u.protocol === 'https:' ? 443 : 80); }

/** The certificate a station presents, read without sending anything (for the words of an error only). */
function presentedFingerprint(u: URL): Promise<string | null> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: hostOf(u), port: portOf(u), rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate()?.fingerprint256 ?? null;
      s.destroy();
      resolve(fp);
    });
    s.setTimeout(5000, () => { s.destroy(); resolve(null); });
    s.on('error', () => resolve(null));
  });
}

/** A TLS connection whose certificate has the pinned fingerprint; anything else is refused before the request is written. */
function pinnedSocket(u: URL, pin: string, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const host = hostOf(u);
    // rejectUnauthorized is off only so that the handshake completes; the pin decides, before any data is sent
    const s = tls.connect({ host, port: portOf(u), rejectUnauthorized: false, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }) });
    s.setTimeout(timeoutMs, () => s.destroy(Object.assign(new Error('no TLS handshake'), { code: 'ETIMEDOUT' })));
    s.once('error', reject);
    s.once('secureConnect', () => {
      s.setTimeout(0);
      const fp = s.getPeerCertificate()?.fingerprint256;
      if (fp === pin) return resolve(s);
      s.destroy();
      reject(Object.assign(new Error(`the station's certificate has SHA-256 ${fp ?? '(none)'}, not the pinned ${pin}`), { code: 'INSPECTOR_PIN_MISMATCH', presented: fp }));
    });
  });
}

/** Turn a connection failure into words: the URL tried, the cause, what to do. */
async function explain(c: StationConn, u: URL, err: Error & { code?: string; presented?: string }): Promise<Error> {
  const code = err.code ?? 'ERROR';
  const where = `${u.protocol}//${u.host}`;
  if (CERT_CODES.has(code)) {
    const fp = err.presented ?? await presentedFingerprint(u);
    const trust = c.fingerprint ? `you pinned --fingerprint ${c.fingerprint}` : c.caFile ? `you trust --ca ${c.caFile}` : 'you gave neither --ca nor --fingerprint';
    return fail('INSPECTOR_STATION_UNTRUSTED', `the station at ${where} is not trusted: ${err.message} (${code}; ${trust}). `
      + (fp ? `It presents a certificate with SHA-256 ${fp}. ` : '')
      + 'To trust it, compare that fingerprint with the one the station printed at start (its log, or /health `server.fingerprint` '
      + 'read on the station itself), then pass --fingerprint <SHA-256> (or INSPECTOR_FINGERPRINT), or pass --ca FILE (or INSPECTOR_CA) '
      + 'with the certificate that issued it (a self-signed station: its <plc.certificateFolder>/https/cert.pem). '
      + 'If the fingerprint changed without the station\'s certificate being renewed, do not trust it.');
  }
  const what: Record<string, string> = {
    ECONNREFUSED: `nothing listens on ${u.host} (connection refused). Is the station running (\`systemctl status inline-inspector\`, or \`inspector demo\`)? Check --url / INSPECTOR_URL and the port (config server.port)`,
    ENOTFOUND: `the host name ${u.hostname} does not resolve. Check --url / INSPECTOR_URL`,
    EAI_AGAIN: `the host name ${u.hostname} could not be resolved now (DNS). Check --url / INSPECTOR_URL`,
    ETIMEDOUT: `no answer from ${u.host} in time. Check the address, the network and the firewall`,
    EHOSTUNREACH: `no route to ${u.hostname}. Check the address and the network`,
    ENETUNREACH: `no route to ${u.hostname}. Check the address and the network`,
  };
  let text = what[code];
  if (!text && u.protocol === 'http:' && (code === 'ECONNRESET' || /socket hang up/.test(err.message))) {
    text = `the station closed the connection: it probably speaks HTTPS (the default). Use https://${u.host}`;
  }
  if (!text && u.protocol === 'https:' && (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))) {
    text = `the station answered without TLS: it serves plain HTTP (server.tls.mode "off"). Use http://${u.host}, or turn HTTPS on`;
  }
  return fail('INSPECTOR_STATION_UNREACHABLE', `cannot reach the station at ${where}: ${text ? `${text} [${code}]` : `${err.message} (${code})`}`);
}

/** The words of a 401: how to get (or renew) a token. */
function unauthorizedText(c: StationConn, message: string): string {
  return `${message}. ${c.token ? 'The token was refused: it expired, was revoked, or belongs to another station. Make a new one'
    : 'No token given: pass --token (or INSPECTOR_TOKEN). Get one'}: on the station, \`inspector tokens create --username NAME --config station.json\` `
    + '(prints the token once; `inspector users add --username NAME --role ml` makes an account first), or as a logged-in user '
    + `POST ${c.url}/api/tokens. The demo prints an admin login (\`demo\` and a fresh password) for its UI`;
}

interface Answer { status: number; statusText: string; text: string }

async function send(c: StationConn, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Answer> {
  const u = new URL(c.url + path);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw fail('INSPECTOR_USAGE', `--url ${c.url}: use https://HOST:PORT (or http:// for a station with server.tls.mode off)`);
  const timeoutMs = c.timeoutMs ?? 600_000;
  try {
    const socket = u.protocol === 'https:' && c.fingerprint ? await pinnedSocket(u, c.fingerprint, 15_000) : null;
    return await new Promise<Answer>((resolve, reject) => {
      const all: Record<string, string | number> = { ...headers, ...(body ? { 'content-length': body.length } : {}) };
      const handle = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      };
      const target = { host: hostOf(u), port: portOf(u), path: u.pathname + u.search, method, headers: all };
      const req = socket ? http.request({ ...target, createConnection: () => socket }, handle) // the verified TLS socket carries the request
        : u.protocol === 'https:' ? https.request({ ...target, ...(c.ca ? { ca: c.ca } : {}) }, handle)
          : http.request(target, handle);
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  } catch (err) {
    throw await explain(c, u, err as Error & { code?: string });
  }
}

/** A multipart or JSON body as bytes (the station requires Content-Length on uploads). */
async function encode(body: FormData | object | undefined, headers: Record<string, string>): Promise<Buffer | undefined> {
  if (body === undefined) return undefined;
  if (body instanceof FormData) {
    const r = new Request('http://encode.invalid/', { method: 'POST', body });
    headers['content-type'] = r.headers.get('content-type')!;
    return Buffer.from(await r.arrayBuffer());
  }
  headers['content-type'] = 'application/json';
  return Buffer.from(JSON.stringify(body));
}

/** One API call; a non-2xx answer becomes a coded error (the server's code and message; a 401 says how to get a token). */
export async function api<T>(c: StationConn, method: string, path: string, body?: FormData | object): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  const res = await send(c, method, path, headers, await encode(body, headers));
  let json: unknown = null;
  try {
    json = res.text ? JSON.parse(res.text) as unknown : null;
  } catch {
    json = null; // a proxy's or the UI's HTML page: the status says what happened
  }
  if (res.status < 200 || res.status >= 300) {
    const e = (json ?? {}) as { code?: string; message?: string };
    const message = e.message ?? `${res.status} ${res.statusText}`;
    throw Object.assign(new Error(res.status === 401 ? unauthorizedText(c, message) : message), { code: e.code ?? `HTTP_${res.status}`, statusCode: res.status });
  }
  return json as T;
}
