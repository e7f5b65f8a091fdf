/**
 * Offline judging with a taught (or any gray anomaly_map) package, outside the
 * station: downscale → register to the package's reference (when the manifest
 * has `registration`) → normalise → onnxruntime. The station does the same in
 * its inference worker; this is for the CLI, evaluation and tests.
 */
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { readGray, type GrayImage } from '../core/gray-image.js';
import { createRegistrar, type Registrar, type RegistrationResult } from '../../calibration/registration.js';
import { loadModelPackage } from '../inference/model-package.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { downscaleImage } from './teach-package.js';
import { TeachImageSizeError } from './errors.js';

export interface Judgement {
  score: number;
  /** copy of the map, [h*w] */
  map: Float32Array;
  mapWidth: number;
  mapHeight: number;
  registration: RegistrationResult | null;
  /** false when registration refused the frame (score is NaN then) */
  registered: boolean;
}

export interface Judge {
  manifest: Manifest;
  judge(frame: GrayImage): Promise<Judgement>;
  close(): Promise<void>;
}

export async function createJudge(packageDir: string, providers: string[] = ['cpu']): Promise<Judge> {
  const pkg = await loadModelPackage(packageDir);
  const { manifest } = pkg;
  const [, , H, W] = manifest.input.shape;
  const { scale } = manifest.input.normalisation;
  const mean = manifest.input.normalisation.mean[0]!;
  const std = manifest.input.normalisation.std[0]!;
  const registrar: Registrar | null = manifest.registration
    ? createRegistrar(await readGray(join(pkg.dir, manifest.registration.reference)), manifest.registration)
    : null;
  const session = await ort.InferenceSession.create(pkg.modelBytes, { executionProviders: providers, intraOpNumThreads: 1 });
  const x = new Float32Array(W * H);
  const warped = new Uint8Array(W * H);
  const mapSpec = manifest.outputs.map!;
  return {
    manifest,
    async judge(frame) {
      if (frame.width % W !== 0 || frame.height % H !== 0 || frame.width / W !== frame.height / H) {
        throw new TeachImageSizeError(`frame ${frame.width}x${frame.height} does not bin evenly to ${W}x${H}`);
      }
      const small = downscaleImage(frame, frame.width / W);
      let src = small.data;
      let registration: RegistrationResult | null = null;
      if (registrar) {
        registration = registrar.register(small);
        if (!registration.ok) {
          return { score: Number.NaN, map: new Float32Array(0), mapWidth: 0, mapHeight: 0, registration, registered: false };
        }
        registrar.warp(small, registration, warped);
        src = warped;
      }
      for (let i = 0; i < x.length; i++) x[i] = (src[i]! * scale - mean) / std;
      const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', x, [1, 1, H, W]) });
      const map = Float32Array.from(out[mapSpec.name]!.data as Float32Array);
      return {
        score: (out[manifest.outputs.score.name]!.data as Float32Array)[0]!, map,
        mapWidth: mapSpec.shape[mapSpec.shape.length - 1]!, mapHeight: mapSpec.shape[mapSpec.shape.length - 2]!,
        registration, registered: true,
      };
    },
    async close() { await session.release(); },
  };
}
