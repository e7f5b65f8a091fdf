/**
 * A tiny ONNX graph builder/editor on top of onnx-proto (protobufjs 6 classes
 * generated from ONNX v1.10.2, IR version <= 8).
 *
 * Enough to build whole models in TypeScript (tests, golden-template /
 * variation models) and to edit exported models (prepend preprocessing).
 *
 *   const g = new GraphBuilder('variation');
 *   g.input('x', 'float32', [1, 1, 32, 40]);
 *   g.initializer(tensorF32('mean', [1, 1, 32, 40], meanData));
 *   g.node('Sub', ['x', 'mean'], ['d']);
 *   g.node('ReduceMax', ['d'], ['score'], { keepdims: attr.int(0) });
 *   g.output('score', 'float32', []);
 *   const bytes = encodeModel(createModel(g.build(), { opset: 13 }));
 *
 * Quirk: onnx-proto knows the ONNX 1.10 schema only. Decoding a newer model
 * silently drops fields it does not know (protobufjs skips unknown fields),
 * so re-encoding such a model loses them. Nothing the CPU runtime needs for
 * opset <= 17 models lives in those fields.
 */
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;

type ModelProto = onnxProto.onnx.ModelProto;
type IModelProto = onnxProto.onnx.IModelProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

export type { ModelProto, IModelProto, IGraphProto, INodeProto, ITensorProto, IValueInfoProto, IAttributeProto };

export const DEFAULT_OPSET = 13;
/** IR version 7 is the one that goes with opset 12/13. */
export const DEFAULT_IR_VERSION = 7;

const DT = onnx.TensorProto.DataType;

/** Element types, spelled as onnxruntime-node spells them. */
export type DType = 'float32' | 'float64' | 'float16' | 'uint8' | 'int8' | 'uint16' | 'int16'
  | 'int32' | 'int64' | 'uint32' | 'uint64' | 'bool' | 'string';

const DTYPE_TO_ELEM: Record<DType, number> = {
  float32: DT.FLOAT, float64: DT.DOUBLE, float16: DT.FLOAT16, uint8: DT.UINT8, int8: DT.INT8,
  uint16: DT.UINT16, int16: DT.INT16, int32: DT.INT32, int64: DT.INT64, uint32: DT.UINT32,
  uint64: DT.UINT64, bool: DT.BOOL, string: DT.STRING,
};

export function dtypeToElemType(dtype: DType): number {
  return DTYPE_TO_ELEM[dtype];
}

/** ONNX element type → dtype name; `undefined` for types this project does not use. */
export function elemTypeToDType(elemType: number | null | undefined): DType | undefined {
  for (const [k, v] of Object.entries(DTYPE_TO_ELEM)) if (v === elemType) return k as DType;
  return undefined;
}

/** A protobuf int64 decodes to a Long when the `long` package is present, to a number otherwise. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

// ---------------------------------------------------------------- attributes

/** A typed attribute value: ONNX distinguishes INT from FLOAT, JS does not. */
export type AttrValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: ITensorProto }
  | { readonly kind: 'graph'; readonly value: IGraphProto };

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  tensor: (value: ITensorProto): AttrValue => ({ kind: 'tensor', value }),
  graph: (value: IGraphProto): AttrValue => ({ kind: 'graph', value }),
} as const;

const AT = onnx.AttributeProto.AttributeType;

export function makeAttribute(name: string, a: AttrValue): IAttributeProto {
  switch (a.kind) {
    case 'int': return { name, type: AT.INT, i: a.value };
    case 'float': return { name, type: AT.FLOAT, f: a.value };
    case 'string': return { name, type: AT.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints': return { name, type: AT.INTS, ints: [...a.value] };
    case 'floats': return { name, type: AT.FLOATS, floats: [...a.value] };
    case 'tensor': return { name, type: AT.TENSOR, t: a.value };
    case 'graph': return { name, type: AT.GRAPH, g: a.value };
  }
}

// ---------------------------------------------------------------- nodes, tensors, value infos

export interface NodeOptions {
  name?: string;
  domain?: string;
}

export function makeNode(opType: string, inputs: readonly string[], outputs: readonly string[],
  attrs: Readonly<Record<string, AttrValue>> = {}, opts: NodeOptions = {}): INodeProto {
  const node: INodeProto = {
    opType,
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
  };
  if (opts.name !== undefined) node.name = opts.name;
  if (opts.domain !== undefined) node.domain = opts.domain;
  return node;
}

function rawBytes(view: ArrayBufferView): Uint8Array {
  // ONNX raw_data is little-endian; so is every platform this runs on.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function checkCount(name: string, dims: readonly number[], n: number): void {
  const want = dims.reduce((a, b) => a * b, 1);
  if (want !== n) throw new RangeError(`tensor ${name}: dims [${dims.join(',')}] need ${want} values, got ${n}`);
}

/** A float32 initializer (raw_data). `dims` [] is a scalar. */
export function tensorF32(name: string, dims: readonly number[], data: ArrayLike<number>): ITensorProto {
  checkCount(name, dims, data.length);
  return { name, dataType: DT.FLOAT, dims: [...dims], rawData: rawBytes(Float32Array.from(data)) };
}

/** An int64 initializer (raw_data). */
export function tensorI64(name: string, dims: readonly number[], data: ArrayLike<number | bigint>): ITensorProto {
  checkCount(name, dims, data.length);
  const a = new BigInt64Array(data.length);
  for (let i = 0; i < data.length; i++) a[i] = BigInt(data[i]!);
  return { name, dataType: DT.INT64, dims: [...dims], rawData: rawBytes(a) };
}

/** Read a float32 tensor's values, whichever field holds them. */
export function readTensorF32(t: ITensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new TypeError(`tensor ${t.name ?? '?'} is not float32`);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** Read an int64 tensor's values as numbers. */
export function readTensorI64(t: ITensorProto): number[] {
  if (t.dataType !== DT.INT64) throw new TypeError(`tensor ${t.name ?? '?'} is not int64`);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData);
    return Array.from(new BigInt64Array(copy.buffer, 0, copy.byteLength / 8), Number);
  }
  return (t.int64Data ?? []).map(toNumber);
}

/** A dimension: a number (static), a string (symbolic, dim_param) or null (unknown). */
export type Dim = number | string | null;

export function makeValueInfo(name: string, dtype: DType, shape: readonly Dim[] | null): IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: dtypeToElemType(dtype) };
  if (shape !== null) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { name, type: { tensorType } };
}

/** The plain description of a value info, for contract checks and messages. */
export interface TensorDescription {
  name: string;
  dtype: DType | undefined;
  elemType: number;
  /** null when the value info carries no shape at all */
  shape: Dim[] | null;
}

export function describeValueInfo(vi: IValueInfoProto): TensorDescription {
  const tt = vi.type?.tensorType;
  const elemType = tt?.elemType ?? 0;
  const shape = tt?.shape
    ? (tt.shape.dim ?? []).map((d): Dim => (d.dimParam ? d.dimParam
      : d.dimValue !== null && d.dimValue !== undefined ? toNumber(d.dimValue) : null))
    : null;
  return { name: vi.name ?? '', dtype: elemTypeToDType(elemType), elemType, shape };
}

export function formatDescription(d: TensorDescription): string {
  const shape = d.shape === null ? '?' : `[${d.shape.map((x) => (x === null ? '?' : String(x))).join(',')}]`;
  return `${d.name}: ${d.dtype ?? `elemType ${d.elemType}`} ${shape}`;
}

// ---------------------------------------------------------------- graphs and models

/** Mutable graph under construction; `build()` returns the GraphProto. */
export class GraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  readonly initializers: ITensorProto[] = [];
  readonly valueInfos: IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name = 'graph', reserved: Iterable<string> = []) {
    for (const r of reserved) this.used.add(r);
  }

  /** A name no other value of this builder (or the reserved set) uses. */
  uniqueName(prefix: string): string {
    let n = prefix;
    while (this.used.has(n)) n = `${prefix}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  input(name: string, dtype: DType, shape: readonly Dim[] | null): string {
    this.used.add(name);
    this.inputs.push(makeValueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DType, shape: readonly Dim[] | null): string {
    this.used.add(name);
    this.outputs.push(makeValueInfo(name, dtype, shape));
    return name;
  }

  valueInfo(name: string, dtype: DType, shape: readonly Dim[] | null): this {
    this.valueInfos.push(makeValueInfo(name, dtype, shape));
    return this;
  }

  initializer(t: ITensorProto): string {
    if (!t.name) throw new TypeError('initializer needs a name');
    this.used.add(t.name);
    this.initializers.push(t);
    return t.name;
  }

  /** float32 constant with a unique name derived from `prefix`. */
  constF32(prefix: string, dims: readonly number[], data: ArrayLike<number>): string {
    return this.initializer(tensorF32(this.uniqueName(prefix), dims, data));
  }

  constI64(prefix: string, dims: readonly number[], data: ArrayLike<number | bigint>): string {
    return this.initializer(tensorI64(this.uniqueName(prefix), dims, data));
  }

  node(opType: string, inputs: readonly string[], outputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {}, opts: NodeOptions = {}): this {
    for (const o of outputs) this.used.add(o);
    this.nodes.push(makeNode(opType, inputs, outputs, attrs, opts));
    return this;
  }

  /** One-output node whose output gets a fresh name; returns that name. */
  op(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}, prefix?: string): string {
    const out = this.uniqueName(prefix ?? opType.toLowerCase());
    this.node(opType, inputs, [out], attrs);
    return out;
  }

  build(): IGraphProto {
    return {
      name: this.name,
      node: [...this.nodes],
      input: [...this.inputs],
      output: [...this.outputs],
      initializer: [...this.initializers],
      valueInfo: [...this.valueInfos],
    };
  }
}

export interface CreateModelOptions {
  opset?: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  /** Extra operator-set imports, e.g. { 'com.microsoft': 1 }. */
  extraOpsets?: Readonly<Record<string, number>>;
  docString?: string;
}

export function createModel(graph: IGraphProto, opts: CreateModelOptions = {}): ModelProto {
  const opsetImport = [{ domain: '', version: opts.opset ?? DEFAULT_OPSET }];
  for (const [domain, version] of Object.entries(opts.extraOpsets ?? {})) opsetImport.push({ domain, version });
  return onnx.ModelProto.create({
    irVersion: opts.irVersion ?? DEFAULT_IR_VERSION,
    producerName: opts.producerName ?? 'inline-inspector',
    producerVersion: opts.producerVersion ?? '0',
    opsetImport,
    graph,
    ...(opts.docString !== undefined ? { docString: opts.docString } : {}),
  });
}

export function encodeModel(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Decode protobuf bytes; throws (protobufjs' message) on bytes that are not a protobuf message. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** Version of an opset import (default domain ''), or undefined when the model does not import it. */
export function opsetVersion(model: IModelProto, domain = ''): number | undefined {
  for (const o of model.opsetImport ?? []) {
    if ((o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx')) return toNumber(o.version);
  }
  return undefined;
}

/**
 * The graph's real inputs: before IR 4 initializers were also listed as
 * inputs; those are not fed by the caller and are left out here.
 */
export function graphInputs(graph: IGraphProto): IValueInfoProto[] {
  const inits = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  return (graph.input ?? []).filter((vi) => !inits.has(vi.name ?? ''));
}

/** Every value name a graph mentions (inputs, outputs, initializers, node ends), subgraphs included. */
export function collectNames(graph: IGraphProto, into = new Set<string>()): Set<string> {
  for (const vi of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) into.add(vi.name ?? '');
  for (const t of graph.initializer ?? []) into.add(t.name ?? '');
  for (const n of graph.node ?? []) {
    for (const x of [...(n.input ?? []), ...(n.output ?? [])]) into.add(x);
    for (const a of n.attribute ?? []) {
      if (a.g) collectNames(a.g, into);
      for (const g of a.graphs ?? []) collectNames(g, into);
    }
  }
  into.delete('');
  return into;
}

/**
 * Rename a value everywhere in a graph (and in subgraphs that do not shadow it
 * with their own input/initializer of the same name). Mutates the graph.
 */
export function renameValue(graph: IGraphProto, from: string, to: string): void {
  const swap = (x: string): string => (x === from ? to : x);
  for (const vi of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    if (vi.name === from) vi.name = to;
  }
  for (const t of graph.initializer ?? []) if (t.name === from) t.name = to;
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map(swap);
    n.output = (n.output ?? []).map(swap);
    for (const a of n.attribute ?? []) {
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
        const shadowed = [...(g.input ?? []), ...(g.initializer ?? [])].some((v) => v.name === from);
        if (!shadowed) renameValue(g, from, to);
      }
    }
  }
}
