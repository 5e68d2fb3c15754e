import type { Argv, ArgumentsCamelCase } from 'yargs';
import { doctor, type DoctorReport } from '../api/doctor';
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
    ...cudaLines(r.cuda),
    `model         ${r.model.ok ? `${r.model.name} (${r.model.fingerprint}) at ${r.model.dir}, verified` : `not usable: ${r.model.error}`}`,
  ];
  result(argv, lines.join('\n'));
}

/** The CUDA state: provider libraries (version), each CUDA library by name, whether it runs. */
function cudaLines(c: DoctorReport['cuda']): string[] {
  if (!c.librariesInstalled) return [`cuda          provider libraries not installed; ${CUDA_HELP}`];
  const from = c.provider
    ? `ONNX Runtime ${c.provider.onnxruntime} for CUDA ${c.provider.cuda} (${c.provider.package}@${c.provider.packageVersion})`
    : 'not installed by `setup cuda` (version unknown)';
  return [
    `cuda          provider libraries: ${from} in ${c.librariesDir}`,
    ...c.libraries.map(
      (l) =>
        `  ${l.path ? 'ok  ' : 'no  '}${l.soname.padEnd(20)}${l.what}${l.path ? `: ${l.path}` : ': not found (LD_LIBRARY_PATH, ldconfig)'}`,
    ),
    `  ${c.runs ? 'ok  ' : 'no  '}session             ${c.runs ? 'a graph really runs on CUDA' : 'does not run on CUDA (see the cuda line under providers)'}`,
  ];
}
