/**
 * createFrameSource: from a capture config to a ready (not yet started)
 * GstFrameSource. Renders the pipeline template (pipelines/<template>.json)
 * and, for `replay`, prepares the raw frame cache first.
 *
 *   const source = await createFrameSource({ template: 'testsrc', width: 640, height: 480, rate: 100, logger });
 *   await source.start();
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { CaptureError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { GstFrameSource, type RestartPolicy } from './gst-frame-source.js';
import { readFileSync } from 'node:fs';
import { loadPipelineTemplate, renderPipelineTemplate, type TemplateName, type TemplateValues } from './pipeline-templates.js';
import { prepareReplayCache, rawFileName } from './replay-cache.js';
import { TriggeredFeed, type LostPart } from './triggered-feed.js';

export interface CaptureConfig {
  template: TemplateName;
  width: number;
  height: number;
  /** parts (frames) per second: replay, testsrc, gige */
  rate?: number;
  /** replay: folder of *.png/*.jpg images */
  folder?: string;
  /** replay: where the raw GRAY8 cache lives (default: a folder under os.tmpdir() keyed by folder and size) */
  cacheDir?: string;
  /** replay: UDP port on 127.0.0.1 that receives one datagram per frame (photo-eye); absent: none */
  photoEyePort?: number;
  /** replay-triggered: UDP port on 127.0.0.1 the line's trigger telegrams arrive on (plc/trigger-telegram.ts) */
  triggerPort?: number;
  /** testsrc: videotestsrc pattern (default 'ball') */
  pattern?: string;
  /** v4l2: device node (default /dev/video0) */
  device?: string;
  /** gige: camera IPv4 address */
  ip?: string;
  /** gige: exposure time in µs / gain in dB (absent: the camera's setting is kept) */
  exposureUs?: number;
  gainDb?: number;
  /** rtsp: stream URL */
  url?: string;
  restart?: Partial<RestartPolicy>;
  firstFrameTimeoutMs?: number;
  stallTimeoutMs?: number;
  logger: Logger;
  /** folder of the templates (default: <repo>/pipelines) */
  pipelinesDir?: string;
}

export const DEFAULT_RESTART: RestartPolicy = { initialDelayMs: 250, maxDelayMs: 5_000 };
export const DEFAULT_FIRST_FRAME_TIMEOUT_MS = 10_000;
export const DEFAULT_STALL_TIMEOUT_MS = 2_000;

/** The default replay cache folder for an image folder and frame size. */
export function defaultReplayCacheDir(folder: string, width: number, height: number): string {
  const key = createHash('sha256').update(`${path.resolve(folder)}\0${width}x${height}`).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), 'inline-inspector-replay', key);
}

function need<T>(value: T | undefined, what: string, template: string): T {
  if (value === undefined || value === null || value === '') {
    throw new CaptureError(`capture template ${template} needs ${what}`);
  }
  return value;
}

/** The template values a config renders to (and, for replay, the frame → file list). */
export async function resolveTemplateValues(config: CaptureConfig): Promise<{ values: TemplateValues; sourceRefs?: string[]; rawPattern?: string }> {
  const { template, width, height } = config;
  const size = { width, height };
  switch (template) {
    case 'replay': {
      const folder = need(config.folder, 'folder', template);
      const cacheDir = config.cacheDir ?? defaultReplayCacheDir(folder, width, height);
      const cache = await prepareReplayCache(folder, cacheDir, size);
      return {
        values: {
          ...size,
          pattern: cache.pattern,
          lastIndex: cache.files.length - 1,
          rate: config.rate,
          photoEyePort: config.photoEyePort,
        },
        sourceRefs: cache.files,
      };
    }
    case 'replay-triggered': {
      const folder = need(config.folder, 'folder', template);
      need(config.triggerPort, 'triggerPort', template);
      const cacheDir = config.cacheDir ?? defaultReplayCacheDir(folder, width, height);
      const cache = await prepareReplayCache(folder, cacheDir, size);
      return { values: { ...size }, sourceRefs: cache.files, rawPattern: cache.pattern };
    }
    case 'testsrc':
      return { values: { ...size, rate: config.rate, pattern: config.pattern } };
    case 'v4l2':
      return { values: { ...size, device: config.device } };
    case 'gige':
      return {
        values: {
          ...size,
          ip: need(config.ip, 'ip', template),
          rate: config.rate,
          exposureUs: config.exposureUs,
          gainDb: config.gainDb,
        },
      };
    case 'rtsp':
      return { values: { ...size, url: need(config.url, 'url', template) } };
    default:
      throw new CaptureError(`unknown capture template ${String(template)}`);
  }
}

/**
 * Prepare (replay cache), render the template and construct the source. A triggered
 * template gets its TriggeredFeed, bound to `triggerPort` before this resolves;
 * `onLost` hears of every trigger that did not become a frame.
 */
export async function createFrameSource(config: CaptureConfig, hooks: { onLost?: (p: LostPart) => void } = {}): Promise<GstFrameSource> {
  if (config.photoEyePort !== undefined && config.template !== 'replay') {
    throw new CaptureError(`photoEyePort is only supported by the replay template, not ${config.template}`);
  }
  const { values, sourceRefs, rawPattern } = await resolveTemplateValues(config);
  const template = loadPipelineTemplate(config.template, config.pipelinesDir);
  const launch = renderPipelineTemplate(template, values);
  const log = config.logger;
  log.debug({ template: config.template, launch }, 'capture pipeline');
  let feed: TriggeredFeed | undefined;
  if (template.trigger) {
    if (!rawPattern || !sourceRefs) throw new CaptureError(`capture template ${config.template}: no replay images for the trigger feed`);
    const dir = path.dirname(rawPattern);
    const images = sourceRefs.map((_, i) => readFileSync(path.join(dir, rawFileName(i))));
    feed = new TriggeredFeed({ port: config.triggerPort!, images, log, onLost: hooks.onLost ?? (() => undefined) });
    try {
      await feed.bind();
    } catch (err) {
      throw new CaptureError(`trigger port ${config.triggerPort}: ${(err as Error).message}`);
    }
  }
  return new GstFrameSource({
    ...(feed ? { feed } : {}),
    launch,
    width: config.width,
    height: config.height,
    ...(sourceRefs ? { sourceRefs } : {}),
    restart: { ...DEFAULT_RESTART, ...config.restart },
    firstFrameTimeoutMs: config.firstFrameTimeoutMs ?? DEFAULT_FIRST_FRAME_TIMEOUT_MS,
    stallTimeoutMs: config.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    logger: log,
  });
}
