/**
 * The README's TypeScript examples compile under strict TypeScript against the library's
 * types as a user gets them: `from 'styled-vq'` is pointed at dist/src/index.d.ts (npm
 * test builds dist/ first). Each ```ts block becomes one module: its imports stay on top,
 * the rest runs inside an async function.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT, tempDir } from './helpers/fixtures';

const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

test('the README has TypeScript examples, and they compile under strict TypeScript', () => {
  expect(blocks.length).toBeGreaterThan(0);
  const tmp = tempDir();
  try {
    const dir = join(tmp.dir, 'readme');
    mkdirSync(dir);
    const files = blocks.map((code, i) => {
      const lines = code.split('\n');
      const imports = lines
        .filter((l) => /^import /.test(l))
        .map((l) => l.replace(/from 'styled-vq'/, `from ${JSON.stringify(join(ROOT, 'dist', 'src', 'index'))}`));
      const body = lines.filter((l) => !/^import /.test(l));
      const file = join(dir, `block${i}.ts`);
      writeFileSync(
        file,
        `${imports.join('\n')}\nexport async function example(): Promise<void> {\n${body.join('\n')}\n}\n`,
      );
      return file;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && files.includes(d.file.fileName))
      .map((d) => `${d.file!.fileName.replace(dir, '')}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diagnostics).toEqual([]);
  } finally {
    tmp.cleanup();
  }
});
