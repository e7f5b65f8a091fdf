/**
 * What the vision server's worker and the main thread say to each other (besides the RPC
 * requests and responses of server/rpc.ts), the RPC method names the main thread answers,
 * and the Int32 `Error` codes the 40100 methods return. Types and constants only: both
 * threads import it.
 */
import type { VisionState } from './vision-state-machine.js';

export type VisionSecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';
export type VisionSecurityPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export interface VisionWorkerData {
  host: string;
  port: number;
  /** own/ (the server's application certificate), trusted/ and rejected/ client certificates */
  certificateFolder: string;
  securityModes: VisionSecurityMode[];
  securityPolicies: VisionSecurityPolicy[];
  allowAnonymous: boolean;
  /** user name + password pairs (passwords resolved from files on the main thread) */
  users: Array<{ userName: string; password: string }>;
  /** the results database the ResultReadyEvents come from (read-only) */
  resultsDbPath: string;
  pollMs: number;
  station: string;
  runId: string;
  /** the camera replays images (replay, replay-triggered, testsrc): results are IsSimulated */
  isSimulated: boolean;
  /** the part loop's switch now, the station's fault now, and the state of a worker that died (a respawn resumes it) */
  inspecting: boolean;
  fault: string | null;
  resume: VisionState | null;
}

export type FromVisionWorker =
  | { type: 'listening'; endpoint: string }
  | { type: 'listen-error'; error: { code: string; message: string } }
  /** after every change of the state machine (the main thread keeps it for a respawn) */
  | { type: 'state'; state: VisionState; transition: string | null }
  | { type: 'closed' };

export type ToVisionWorker =
  /** the station's fault changed (null: none) */
  | { type: 'fault'; fault: string | null }
  | { type: 'close' };

/** The RPC methods the main thread answers for the worker (vision-ports.ts). */
export const VISION_RPC = {
  setInspecting: 'vision.setInspecting',
  recipes: 'vision.recipes',
  prepare: 'vision.recipes.prepare',
  activate: 'vision.recipes.activate',
} as const;

/**
 * The `Error` output of the 40100 methods (0: done). 40100 leaves the values to the system;
 * negative values here name the station's refusal; the coded error (INSPECTOR_…) and its
 * message travel in the recipe id's Description.
 */
export const VisionError = {
  OK: 0,
  /** the validation gate refused the package (INSPECTOR_MODEL_VALIDATION_FAILED) */
  GATE_REFUSED: -1,
  /** no such package in the registry (INSPECTOR_MODEL_NOT_FOUND), or a malformed recipe id */
  NOT_FOUND: -2,
  /** ActivateRecipe / StartContinuous with a recipe that was not prepared */
  NOT_PREPARED: -3,
  /** unsigned, unknown key or bad signature (INSPECTOR_MODEL_UNSIGNED / _KEY_UNKNOWN / _SIGNATURE_INVALID) */
  SIGNATURE: -4,
  /** another model operation is running (INSPECTOR_MODEL_LIFECYCLE_BUSY) */
  BUSY: -5,
  /** any other coded error of the station */
  STATION: -6,
  /** the package is live already (INSPECTOR_MODEL_IN_USE) */
  ALREADY_LIVE: -7,
} as const;

export function visionErrorOf(code: string | undefined): number {
  switch (code) {
    case 'INSPECTOR_MODEL_VALIDATION_FAILED': return VisionError.GATE_REFUSED;
    case 'INSPECTOR_MODEL_NOT_FOUND': return VisionError.NOT_FOUND;
    case 'INSPECTOR_MODEL_UNSIGNED': case 'INSPECTOR_MODEL_KEY_UNKNOWN': case 'INSPECTOR_MODEL_SIGNATURE_INVALID': return VisionError.SIGNATURE;
    case 'INSPECTOR_MODEL_LIFECYCLE_BUSY': return VisionError.BUSY;
    case 'INSPECTOR_MODEL_IN_USE': return VisionError.ALREADY_LIVE;
    default: return VisionError.STATION;
  }
}

/** A recipe is a registry package: "<name>@<version>". */
export interface RecipeRef { name: string; version: string }
export const recipeKey = (r: RecipeRef): string => `${r.name}@${r.version}`;

/** "<name>@<version>", or Id = name with Version = version; null when it names no package. */
export function parseRecipeId(id: string, version?: string | null): RecipeRef | null {
  const at = id.lastIndexOf('@');
  if (at > 0 && at < id.length - 1) return { name: id.slice(0, at), version: id.slice(at + 1) };
  if (id && version) return { name: id, version };
  return null;
}
