import type { Argv, ArgumentsCamelCase } from 'yargs';
import { doctor } from '../api/doctor';
import { CUDA_HELP } from '../runtime/onnx';
import { type GlobalArgs, printJson, result } from '../cli/globals';
import { modelError } from '../errors';

export type DoctorArgs = GlobalArgs;

export const command = 'doctor';
export const describe =
  'Check this machine: versions, which execution providers load (tried for real), the default model';

export function builder(y: Argv<GlobalArgs>): Argv<DoctorArgs> {
  return y.example('$0 doctor', 'human-readable report').example('$0 doctor --json', 'the same as JSON');
}

export async function handler(argv: ArgumentsCamelCase<DoctorArgs>): Promise<void> {
  const r = await doctor({ model: argv.model });
  if (argv.json) printJson(r);
  else report(argv, r);
  // A script running `doctor` must see a machine that cannot run the model as a failure.
  if (!r.model.ok) throw modelError(`the model is not usable: ${r.model.error}`);
}

function report(argv: DoctorArgs, r: Awaited<ReturnType<typeof doctor>>): void {
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'no  ');
  const lines = [
    `styled-vq     ${r.versions.styledVq}`,
    `node          ${r.versions.node} (${r.platform})`,
    `onnxruntime   ${r.versions.onnxruntime} (onnxruntime-node)`,
    `sharp         ${r.versions.sharp}`,
    `cpu           ${r.cpu.cores} cores, ${r.cpu.model}`,
    'providers',
    ...r.providers.map((p) => `  ${mark(p.ok)}${p.device.padEnd(8)}${p.message}`),
    `cuda libs     ${r.cuda.librariesInstalled ? `installed in ${r.cuda.librariesDir}` : `not installed; ${CUDA_HELP}`}`,
    `model         ${r.model.ok ? `${r.model.name} (${r.model.fingerprint}) at ${r.model.dir}, verified` : `not usable: ${r.model.error}`}`,
  ];
  result(argv, lines.join('\n'));
}
