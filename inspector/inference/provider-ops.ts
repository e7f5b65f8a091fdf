/**
 * Which ONNX operators each execution provider is declared to run, as data.
 *
 * A package is checked against the configured provider list BEFORE a session
 * is created: a provider whose declared set lacks an operator of the graph
 * (or whose opset range does not cover the model's) is skipped with a reason,
 * like any other provider fallback; when no provider of the list can run the
 * graph the package is refused with INSPECTOR_MODEL_UNSUPPORTED_OP, naming the
 * operators per provider.
 *
 * - `cpu`: `null` = every standard (ai.onnx) operator, opset 7..21. The CPU
 *   provider is the reference: what it really lacks (e.g. a type combination
 *   it has no kernel for, an unknown custom domain) is reported by
 *   onnxruntime when the session is created, and mapped to the same code by
 *   `unsupportedOpFromOrtMessage`.
 * - `cuda`, `tensorrt`, `webgpu`: conservative allow-lists of the operators
 *   this appliance's models use and that the provider implements (ONNX Runtime
 *   1.29/1.30 kernel registrations). An operator not listed refuses the
 *   provider: widen a list only after a model with that operator was verified
 *   on the device (see the placement check in providers.ts).
 *
 * The preprocessing prepended to the model (Cast, AveragePool | Resize, Mul,
 * Add) is in every list.
 */
import { ModelUnsupportedOpError } from './package-errors.js';
import { opsetVersion, toNumber, type IGraphProto, type ModelProto } from './onnx-graph.js';
import type { ProviderFallback, ProviderName } from './providers.js';

export interface ProviderOpSupport {
  /** standard-domain opset versions the provider accepts */
  opset: { min: number; max: number };
  /** ai.onnx op types; null = all of them */
  ops: readonly string[] | null;
  /** non-standard domains accepted (e.g. com.microsoft contrib ops) */
  domains: readonly string[];
}

const PREPROCESS = ['Cast', 'AveragePool', 'Resize', 'Mul', 'Add'];
const CNN_COMMON = [
  ...PREPROCESS, 'Abs', 'ArgMax', 'BatchNormalization', 'Clip', 'Concat', 'Constant', 'Conv', 'ConvTranspose', 'Div',
  'Dropout', 'Erf', 'Exp', 'Expand', 'Flatten', 'Gather', 'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid',
  'HardSwish', 'Identity', 'InstanceNormalization', 'LeakyRelu', 'Log', 'MatMul', 'Max', 'MaxPool', 'Min', 'Neg',
  'Pad', 'Pow', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceSum', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Slice',
  'Softmax', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Tanh', 'Tile', 'Transpose', 'Unsqueeze', 'Upsample', 'Where',
];

export const PROVIDER_OPS: Readonly<Record<ProviderName, ProviderOpSupport>> = {
  cpu: { opset: { min: 7, max: 21 }, ops: null, domains: ['com.microsoft'] },
  cuda: {
    opset: { min: 7, max: 21 },
    ops: [...CNN_COMMON, 'Ceil', 'Equal', 'Floor', 'Greater', 'LayerNormalization', 'Less', 'Not', 'PRelu',
      'Range', 'ReduceL2', 'Round', 'Sign', 'Sin', 'Cos', 'TopK', 'Trilu', 'Einsum', 'NonZero', 'ScatterND', 'GatherND'],
    domains: ['com.microsoft'],
  },
  tensorrt: {
    opset: { min: 7, max: 20 },
    ops: [...CNN_COMMON, 'Ceil', 'Equal', 'Floor', 'Greater', 'LayerNormalization', 'Less', 'Not', 'PRelu', 'Range',
      'ReduceL2', 'Round', 'Sign', 'TopK', 'Einsum', 'ScatterND', 'GatherND'],
    domains: [],
  },
  webgpu: {
    opset: { min: 7, max: 21 },
    ops: [...CNN_COMMON, 'Ceil', 'Equal', 'Floor', 'Greater', 'LayerNormalization', 'Less', 'Not', 'PRelu', 'Range',
      'Round', 'Sign', 'Sin', 'Cos'],
    domains: [],
  },
};

/** Every (domain, opType) the graph uses, subgraphs included. */
export function graphOps(graph: IGraphProto, into = new Map<string, { domain: string; opType: string }>()): Map<string, { domain: string; opType: string }> {
  for (const n of graph.node ?? []) {
    const domain = n.domain === 'ai.onnx' ? '' : n.domain ?? '';
    const opType = n.opType ?? '';
    into.set(`${domain}:${opType}`, { domain, opType });
    for (const a of n.attribute ?? []) {
      if (a.g) graphOps(a.g, into);
      for (const g of a.graphs ?? []) graphOps(g, into);
    }
  }
  return into;
}

/** Why `provider` cannot run `model` (empty when it can, as far as the declared data knows). */
export function unsupportedOps(model: ModelProto, provider: ProviderName): string[] {
  const support = PROVIDER_OPS[provider];
  const problems: string[] = [];
  const opset = opsetVersion(model);
  if (opset !== undefined && (opset < support.opset.min || opset > support.opset.max)) {
    problems.push(`opset ${opset} outside ${support.opset.min}..${support.opset.max}`);
  }
  for (const o of model.opsetImport ?? []) {
    const d = o.domain ?? '';
    if (d !== '' && d !== 'ai.onnx' && !support.domains.includes(d)) problems.push(`domain ${d} (v${toNumber(o.version)})`);
  }
  for (const { domain, opType } of graphOps(model.graph ?? {}).values()) {
    if (domain === '') {
      if (support.ops !== null && !support.ops.includes(opType)) problems.push(opType);
    } else if (!support.domains.includes(domain)) {
      problems.push(`${domain}:${opType}`);
    }
  }
  return [...new Set(problems)];
}

/**
 * Filter a provider preference list down to the providers that can run the
 * model. Skipped providers come back as fallbacks (with the operators named);
 * none left → ModelUnsupportedOpError.
 */
export function providersForModel(model: ModelProto, providers: readonly ProviderName[]): { usable: ProviderName[]; skipped: ProviderFallback[] } {
  const usable: ProviderName[] = [];
  const skipped: ProviderFallback[] = [];
  for (const p of providers) {
    const missing = unsupportedOps(model, p);
    if (missing.length === 0) usable.push(p);
    else skipped.push({ provider: p, reason: `unsupported by ${p}: ${missing.join(', ')}` });
  }
  if (usable.length === 0) throw new ModelUnsupportedOpError(skipped.map((s) => s.reason).join('; '));
  return { usable, skipped };
}

/** ORT session-creation messages that mean "this provider has no kernel for an operator of the graph". */
const ORT_UNSUPPORTED = [
  /Could not find an implementation for (\S+)/i,
  /(\S+) is not a registered function\/op/i,
  /No Op registered for (\S+)/i,
  /Unsupported op(?:erator)? (\S+)/i,
];

/** Map an onnxruntime session-creation failure to ModelUnsupportedOpError when it is one; otherwise null. */
export function unsupportedOpFromOrtMessage(provider: string, message: string): Error | null {
  for (const re of ORT_UNSUPPORTED) {
    if (re.test(message)) return new ModelUnsupportedOpError(`${provider}: ${message.slice(0, 400)}`);
  }
  return null;
}
