import type { Argv, ArgumentsCamelCase } from 'yargs';
import { modelInfo } from '../api/info';
import { type GlobalArgs, printJson, result, withModel } from '../cli/globals';
import { DEFAULTS } from '../defaults';

export type InfoArgs = GlobalArgs;

export const command = 'info';
export const describe = 'Show the model: name, config, parameter counts, codebook, fingerprint, files (verified)';

export function builder(y: Argv<GlobalArgs>): Argv<InfoArgs> {
  return y
    .example('$0 info', 'the default model')
    .example('$0 info --model test/fixtures/model-tiny --json', 'another package, as JSON');
}

const fmtCount = (n: number) => n.toLocaleString('en-US');

export async function handler(argv: ArgumentsCamelCase<InfoArgs>): Promise<void> {
  await withModel(argv, async (model) => {
    const info = modelInfo(model);
    if (argv.json) {
      printJson(info);
      return;
    }
    const lines = [
      `name          ${info.name}${info.description ? `  (${info.description})` : ''}`,
      `directory     ${info.dir}  [${info.source === 'option' ? '--model' : info.source === 'env' ? `$${DEFAULTS.modelEnv}` : 'default'}]`,
      `fingerprint   ${info.fingerprint}  (all files verified)`,
      `dtypes        ${info.dtypes.map((d) => (d.dtype === 'fp32' ? 'fp32' : `${d.dtype} (fingerprint ${d.fingerprint})`)).join(', ')}`,
      ...(info.sameTokensAs.length
        ? [
            `same tokens   as ${info.sameTokensAs.map((e) => `${e.name} (${e.fingerprint})`).join(', ')}: their token files decode here`,
          ]
        : []),
      `image size    ${info.imageSize}x${info.imageSize}`,
      `tokens        ${info.numTokens} per image, latent dim ${info.latentDim}`,
      `codebook      ${fmtCount(info.codebook.size)} entries x ${info.codebook.dim}, ${info.codebook.metric}`,
      `prefix fill   ${info.prefixFill ?? 'none (explain, evaluate and decode --prefix need one)'}`,
      `parameters    ${
        Object.entries(info.parameters)
          .map(([k, v]) => `${k} ${fmtCount(v)}`)
          .join(', ') || 'not recorded'
      }`,
      `config        ${Object.entries(info.config)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      `preprocessing ${Object.entries(info.preprocessing)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ')}`,
      'files',
      ...info.files.map(
        (f) =>
          `  ${f.role.padEnd(16)} ${f.path.padEnd(24)} ${fmtCount(f.bytes).padStart(15)} bytes  sha256 ` +
          `${f.sha256.slice(0, 16)}...`,
      ),
    ];
    result(argv, lines.join('\n'));
  });
}
