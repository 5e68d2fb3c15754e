import type { Argv, ArgumentsCamelCase } from 'yargs';
import { type GlobalArgs, notice, printJson, result } from '../cli/globals';
import { CUDA_PROVIDER_PACKAGE, setupCuda } from '../runtime/cuda-setup';

export interface SetupArgs extends GlobalArgs {
  what: 'cuda';
  from?: string;
  'cache-dir'?: string;
  copy: boolean;
  overwrite: boolean;
}

export const command = 'setup <what>';
export const describe =
  "Install optional parts: `cuda` puts onnxruntime-node's CUDA 13 provider libraries in place (from the npm registry)";

export function builder(y: Argv<GlobalArgs>): Argv<SetupArgs> {
  return (y as Argv<GlobalArgs & { what: 'cuda' }>)
    .positional('what', { choices: ['cuda'] as const, describe: 'What to set up', demandOption: true })
    .options({
      from: {
        type: 'string',
        requiresArg: true,
        describe: `A local tarball of ${CUDA_PROVIDER_PACKAGE.name}@${CUDA_PROVIDER_PACKAGE.version} instead of the registry`,
      },
      'cache-dir': {
        type: 'string',
        requiresArg: true,
        describe: 'Where the download is kept (default $STYLED_VQ_CACHE/cuda, else ~/.cache/styled-vq/cuda)',
      },
      copy: {
        type: 'boolean',
        default: false,
        describe: 'Copy the libraries instead of symlinking them into the cache',
      },
      overwrite: {
        type: 'boolean',
        default: false,
        describe: 'Replace provider libraries that setup cuda did not install (e.g. the CUDA 12 ones)',
      },
    })
    .example('$0 setup cuda', 'download (once, 179 MB) and link the CUDA provider; then `$0 doctor`')
    .example(
      '$0 setup cuda --from provider.tgz',
      'offline, from a tarball made elsewhere with `npm pack`',
    ) as unknown as Argv<SetupArgs>;
}

export async function handler(argv: ArgumentsCamelCase<SetupArgs>): Promise<void> {
  const r = await setupCuda({
    from: argv.from,
    cacheDir: argv['cache-dir'],
    copy: argv.copy,
    overwrite: argv.overwrite,
    log: (line) => notice(argv, line),
  });
  if (argv.json) return printJson(r);
  const changed = r.files.some((f) => f.action !== 'present');
  const how = changed ? (r.files.some((f) => f.action === 'copied') ? 'copied into' : 'linked into') : 'already in';
  result(
    argv,
    `CUDA provider (ONNX Runtime ${r.onnxruntime}, CUDA ${r.cuda}, ${r.package}@${r.packageVersion}) ${how} ${r.targetDir}; \`styled-vq doctor\` shows whether CUDA loads`,
  );
}
