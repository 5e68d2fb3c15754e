/**
 * A graph must agree with its manifest before it runs: the inputs and outputs the package
 * contract names, with the shapes the manifest's sizes predict (so an edited `image_size`,
 * `num_tokens`, `latent_dim` or `codebook.size` is refused when the package is opened, before
 * anything is allocated from it), and no external-data file other than the one model.json
 * lists, hashes and fingerprints for that graph (docs/model-package.md).
 */
import { dirname, isAbsolute, normalize, posix, sep } from 'node:path';
import { modelError } from '../errors';
import type { GraphRole, Manifest } from './manifest';
import { type GraphInfo, type GraphValue, ONNX_FLOAT, ONNX_INT64 } from './onnx-graph';

/** Graph input/output names fixed by docs/model-package.md. */
export const IO: Record<GraphRole, { input: string; output: string }> = {
  encoder: { input: 'image', output: 'latents' },
  codebook: { input: 'latents', output: 'tokens' },
  dequantize: { input: 'tokens', output: 'latents' },
  decoder: { input: 'latents', output: 'image' },
};

interface Expected {
  elemType: number;
  /** Every dim after the batch dim. */
  dims: number[];
  /** What the dims come from, for messages. */
  from: string;
}

const TYPE_NAMES: Record<number, string> = { [ONNX_FLOAT]: 'float32', [ONNX_INT64]: 'int64' };
const typeName = (t: number | null) => (t === null ? 'no type' : (TYPE_NAMES[t] ?? `ONNX type ${t}`));
const shapeText = (dims: GraphValue['dims']) =>
  dims ? `[${dims.map((d) => (d === null ? '?' : String(d))).join(',')}]` : 'no shape';

function expectations(m: Manifest): Record<'image' | 'latents' | 'tokens', Expected> {
  const { image_size: s, num_tokens: t, latent_dim: d } = m.config;
  return {
    image: { elemType: ONNX_FLOAT, dims: [3, s, s], from: `[B,3,image_size,image_size] = [B,3,${s},${s}]` },
    latents: { elemType: ONNX_FLOAT, dims: [t, d], from: `[B,num_tokens,latent_dim] = [B,${t},${d}]` },
    tokens: { elemType: ONNX_INT64, dims: [t], from: `[B,num_tokens] = [B,${t}]` },
  };
}

/**
 * Check a decoded graph against the manifest; returns the external-data locations it names
 * (as spelled in the graph, all of them the one file model.json lists for this role).
 */
export function checkGraph(dir: string, role: GraphRole, manifest: Manifest, info: GraphInfo): string[] {
  const file = manifest.files[role].path;
  const fail = (what: string) => modelError(`Model package ${dir}: ${file} ${what}`);
  const { input, output } = IO[role];
  const inValue = info.inputs.find((v) => v.name === input);
  const outValue = info.outputs.find((v) => v.name === output);
  if (!inValue || !outValue) {
    throw modelError(
      `${file} has inputs [${info.inputs.map((v) => v.name).join(', ')}] and outputs ` +
        `[${info.outputs.map((v) => v.name).join(', ')}]; expected input "${input}" and output "${output}" ` +
        `(docs/model-package.md)`,
    );
  }
  const exp = expectations(manifest);
  // Inputs are what the library allocates from the manifest's sizes: their dims must be
  // fixed in the graph and equal. Outputs may leave a dim symbolic (the exporter's shape
  // inference sometimes does); each run's output shape is checked as well.
  checkValue(inValue, 'input', exp[input as keyof typeof exp], true, fail);
  checkValue(outValue, 'output', exp[output as keyof typeof exp], false, fail);
  if (role === 'dequantize') checkCodebookTable(manifest, info, fail);
  return checkExternalData(dir, role, manifest, info);
}

function checkValue(
  v: GraphValue,
  kind: 'input' | 'output',
  exp: Expected,
  fixed: boolean,
  fail: (what: string) => Error,
): void {
  const says = `model.json says ${exp.from} (an edited size, or a graph of another package)`;
  if (v.elemType !== exp.elemType)
    throw fail(`${kind} "${v.name}" is ${typeName(v.elemType)}, expected ${typeName(exp.elemType)}`);
  const dims = v.dims;
  const ok =
    dims !== null &&
    dims.length === exp.dims.length + 1 &&
    exp.dims.every((d, i) => dims[i + 1] === d || (!fixed && typeof dims[i + 1] !== 'number'));
  if (!ok) throw fail(`${kind} "${v.name}" has shape ${shapeText(dims)}; ${says}`);
}

/**
 * dequantize.onnx looks ids up in one float table of `size` rows of `latent_dim` (per
 * position: `num_tokens * size` rows). Where the graph holds such a table, its rows must
 * match `codebook.size` (and `per_position`): ids the manifest allows must exist, and ids
 * that exist must be allowed.
 */
function checkCodebookTable(m: Manifest, info: GraphInfo, fail: (what: string) => Error): void {
  const d = m.config.latent_dim;
  const rows = m.codebook.size * (m.codebook.per_position ? m.config.num_tokens : 1);
  const tables = info.weights.filter((w) => w.dataType === ONNX_FLOAT && w.dims.length === 2 && w.dims[1] === d);
  if (tables.length === 0 || tables.some((w) => w.dims[0] === rows)) return;
  const per = m.codebook.per_position ? ` x num_tokens ${m.config.num_tokens} (per_position)` : '';
  throw fail(
    `holds a codebook table of [${tables[0].dims.join(',')}]; model.json says codebook.size ${m.codebook.size}${per} ` +
      `= ${rows} rows of ${d}`,
  );
}

function checkExternalData(dir: string, role: GraphRole, m: Manifest, info: GraphInfo): string[] {
  const entry = m.files[role];
  const fail = (what: string) => modelError(`Model package ${dir}: ${entry.path} ${what}`);
  const locations = new Set<string>();
  for (const t of info.external) {
    const loc = t.location;
    if (!loc) throw fail(`stores tensor "${t.tensor}" as external data without a location`);
    // ONNX Runtime resolves a location against the graph's folder; anything that could leave
    // it (absolute, drive letter, any ".." segment) is refused whatever the manifest says.
    const segments = loc.split(/[\\/]/);
    if (isAbsolute(loc) || posix.isAbsolute(loc) || /^[a-zA-Z]:/.test(loc) || segments.includes('..')) {
      throw fail(`names external data "${loc}" (tensor "${t.tensor}") outside the package folder`);
    }
    const listed = entry.data;
    const resolved = normalize(`${dirname(entry.path)}${sep}${loc}`);
    if (!listed || normalize(listed.path) !== resolved) {
      throw fail(
        `names external data "${loc}" (tensor "${t.tensor}"), which model.json does not list ` +
          `(files.${role}.data${listed ? ` is "${listed.path}"` : ' is null'}); every file ONNX Runtime opens must ` +
          `be listed with its size and sha256`,
      );
    }
    const ok =
      Number.isSafeInteger(t.offset) &&
      t.offset >= 0 &&
      (t.length === undefined || (Number.isSafeInteger(t.length) && t.length >= 0)) &&
      t.offset + (t.length ?? 0) <= listed.bytes;
    if (!ok) {
      throw fail(
        `places tensor "${t.tensor}" at offset ${t.offset}, length ${t.length} in ${listed.path}, beyond its ` +
          `${listed.bytes} bytes`,
      );
    }
    locations.add(loc);
  }
  return [...locations];
}
