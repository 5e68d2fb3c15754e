/**
 * What the loader needs to know about an ONNX graph before ONNX Runtime sees it: the
 * declared inputs and outputs (name, element type, shape), the dims of the weight tensors,
 * and every external-data file a tensor names (the files ONNX Runtime would open besides
 * the graph itself). Decoded with protobufjs from a subset of onnx.proto: fields not listed
 * below (raw weights above all) are skipped by the reader, never copied.
 */
import * as protobuf from 'protobufjs';

/**
 * The part of onnx.proto (onnx/onnx, IR version 10) that leads to a tensor or describes an
 * input or output; field numbers are onnx.proto's. Every place a TensorProto can sit is
 * listed (initializers, sparse initializers, node attributes, subgraphs of If/Loop/Scan,
 * model-local functions, training info), so no external-data reference goes unseen.
 */
const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
}
message SparseTensorProto { optional TensorProto values = 1; optional TensorProto indices = 2; }
message AttributeProto {
  optional string name = 1;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  optional SparseTensorProto sparse_tensor = 22;
  repeated SparseTensorProto sparse_tensors = 23;
}
message NodeProto { optional string op_type = 4; repeated AttributeProto attribute = 5; }
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message GraphProto {
  repeated NodeProto node = 1;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated SparseTensorProto sparse_initializer = 15;
}
message FunctionProto { repeated NodeProto node = 7; }
message TrainingInfoProto { optional GraphProto initialization = 1; optional GraphProto algorithm = 2; }
message ModelProto {
  optional GraphProto graph = 7;
  repeated TrainingInfoProto training_info = 20;
  repeated FunctionProto functions = 25;
}
`;

/** onnx.proto TensorProto.DataType values the package contract uses. */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;
/** TensorProto.DataLocation.EXTERNAL */
const EXTERNAL = 1;

/** One declared input or output. A dim is a number, a symbolic name, or null when unknown. */
export interface GraphValue {
  name: string;
  elemType: number | null;
  /** null when the graph declares no shape at all. */
  dims: (number | string | null)[] | null;
}

/** A tensor whose bytes live in another file (onnx.proto "external_data"). */
export interface ExternalTensor {
  tensor: string;
  location: string | undefined;
  offset: number;
  /** undefined: to the end of the file. */
  length: number | undefined;
}

export interface GraphInfo {
  inputs: GraphValue[];
  outputs: GraphValue[];
  /** The main graph's weights (initializers and Constant values): name, element type, dims. */
  weights: { name: string; dataType: number; dims: number[] }[];
  external: ExternalTensor[];
}

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

// Plain objects (protobufjs toObject with longs as numbers): only the fields used below.
interface Tensor {
  dims?: number[];
  data_type?: number;
  name?: string;
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
}
interface Sparse {
  values?: Tensor;
  indices?: Tensor;
}
interface Attribute {
  name?: string;
  t?: Tensor;
  g?: Graph;
  tensors?: Tensor[];
  graphs?: Graph[];
  sparse_tensor?: Sparse;
  sparse_tensors?: Sparse[];
}
interface Node {
  op_type?: string;
  attribute?: Attribute[];
}
interface Value {
  name?: string;
  type?: {
    tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: number; dim_param?: string }[] } };
  };
}
interface Graph {
  node?: Node[];
  initializer?: Tensor[];
  input?: Value[];
  output?: Value[];
  sparse_initializer?: Sparse[];
}
interface ModelObject {
  graph?: Graph;
  training_info?: { initialization?: Graph; algorithm?: Graph }[];
  functions?: { node?: Node[] }[];
}

/**
 * Decode a serialized ModelProto. Throws a plain Error for bytes that are not one
 * (the caller names the file).
 */
export function readGraphInfo(bytes: Uint8Array): GraphInfo {
  const type = onnxModelType();
  const model = type.toObject(type.decode(bytes), { longs: Number, arrays: true }) as ModelObject;
  if (!model.graph) throw new Error('no graph in the ONNX model');

  const tensors: Tensor[] = [];
  const visitGraph = (g: Graph | undefined): void => {
    if (!g) return;
    tensors.push(...(g.initializer ?? []));
    for (const s of g.sparse_initializer ?? []) visitSparse(s);
    visitNodes(g.node);
  };
  const visitSparse = (s: Sparse | undefined): void => {
    if (s?.values) tensors.push(s.values);
    if (s?.indices) tensors.push(s.indices);
  };
  const visitNodes = (nodes: Node[] | undefined): void => {
    for (const n of nodes ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) tensors.push(a.t);
        tensors.push(...(a.tensors ?? []));
        visitSparse(a.sparse_tensor);
        for (const s of a.sparse_tensors ?? []) visitSparse(s);
        visitGraph(a.g);
        for (const g of a.graphs ?? []) visitGraph(g);
      }
    }
  };
  visitGraph(model.graph);
  for (const t of model.training_info ?? []) {
    visitGraph(t.initialization);
    visitGraph(t.algorithm);
  }
  for (const f of model.functions ?? []) visitNodes(f.node);

  const external: ExternalTensor[] = [];
  for (const t of tensors) {
    const entries = t.external_data ?? [];
    // Either marker makes it external for some reader: check both.
    if (t.data_location !== EXTERNAL && entries.length === 0) continue;
    const get = (key: string) => entries.find((e) => e.key === key)?.value;
    const length = get('length');
    external.push({
      tensor: t.name ?? '',
      location: get('location'),
      offset: Number(get('offset') ?? 0),
      length: length === undefined ? undefined : Number(length),
    });
  }

  const g = model.graph;
  const weights: GraphInfo['weights'] = [];
  const weight = (t: Tensor | undefined) => {
    if (t) weights.push({ name: t.name ?? '', dataType: t.data_type ?? 0, dims: t.dims ?? [] });
  };
  for (const t of g.initializer ?? []) weight(t);
  for (const n of g.node ?? []) if (n.op_type === 'Constant') for (const a of n.attribute ?? []) weight(a.t);

  return { inputs: (g.input ?? []).map(graphValue), outputs: (g.output ?? []).map(graphValue), weights, external };
}

function graphValue(v: Value): GraphValue {
  const tt = v.type?.tensor_type;
  const dims = tt?.shape
    ? (tt.shape.dim ?? []).map((d) => (d.dim_value !== undefined ? d.dim_value : (d.dim_param ?? null)))
    : null;
  return { name: v.name ?? '', elemType: tt?.elem_type ?? null, dims };
}
