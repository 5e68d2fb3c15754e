/**
 * The real CLI in a child process (dist/, built by `npm test`), on the fixture package:
 * exit codes (0 ok, 1 usage, 2 input/model), stdout JSON, one-line errors, and no output
 * file (or temp file) left behind by a failure.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeNpy } from '../src/tokens/npy';
import { cudaLibrariesInstalled } from '../src/runtime/onnx';
import { errorLines, listDir, pngClaiming, pngOf, pngSize, runCli, runCliInProcess } from './helpers/cli';
import { copyFixtureModel, EXAMPLES, FIXTURE_MODEL, tempDir } from './helpers/fixtures';

const PIER = join(EXAMPLES, 'pier.jpg');
const GLACIER = join(EXAMPLES, 'glacier.jpg');
const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
const FINGERPRINT = JSON.parse(readFileSync(join(FIXTURE_MODEL, 'model.json'), 'utf8')).fingerprint as string;

let tmp: ReturnType<typeof tempDir>;
let cwd: string;
beforeAll(() => {
  tmp = tempDir('styled-vq-cli-');
  cwd = tmp.dir;
});
afterAll(() => tmp.cleanup());

const cli = (...args: string[]) => runCli(args, { cwd });
const fresh = (name: string) => {
  const d = join(cwd, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d);
  return d;
};

/** A failure: the exit code, exactly one error line on stderr, and that line. */
function expectFailure(r: ReturnType<typeof cli>, code: number, pattern: RegExp): void {
  const lines = errorLines(r.stderr);
  expect({ code: r.code, lines }).toEqual({ code, lines: [expect.stringMatching(pattern)] });
  expect(lines[0]).toMatch(/^styled-vq: error: /);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
}

describe('usage', () => {
  test('--help lists every command; command help has examples', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const c of ['encode', 'decode', 'reconstruct', 'preprocess', 'quantize', 'dequantize', 'info', 'doctor'])
      expect(r.stdout).toContain(`styled-vq ${c}`);
    const e = cli('encode', '--help');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/Examples:/);
    expect(e.stdout).toContain('styled-vq encode examples/pier.jpg');
  });

  test('no command, unknown command, unknown flag, bad values: exit 1, one line', async () => {
    expectFailure(cli(), 1, /Name a command/); // once as a process; the rest in this one (same main())
    const inProcess = (...args: string[]) => runCliInProcess(args, { cwd });
    expectFailure(
      await inProcess('frobnicate'),
      1,
      /Unknown option or extra argument "frobnicate" \(see styled-vq --help\)/,
    );
    expectFailure(
      await inProcess('info', '--frob'),
      1,
      /Unknown option or extra argument --frob \(see styled-vq info --help\)/,
    );
    expectFailure(
      await inProcess('info', '--device', 'tpu'),
      1,
      /Unsupported device "tpu"\. Should be one of: auto, cpu, cuda, webgpu\./,
    );
    expectFailure(
      await inProcess('info', '--threads', '0'),
      1,
      /Expected positive integer for --threads but received "0"/,
    );
    expectFailure(
      await inProcess('encode'),
      1,
      /^styled-vq: error: encode needs <image\.\.\.>: e\.g\. styled-vq encode image/,
    );
    expectFailure(
      await inProcess('reconstruct', PIER, '--compare', ...M),
      1,
      /--compare writes the input and the reconstruction side by side to a file: add -o/,
    );
    expectFailure(
      await inProcess('decode', 'x.json', '--size', '12', ...M),
      1,
      /Expected WIDTHxHEIGHT \(1-16383 each, e\.g\. 512x512\) for --size but received "12"/,
    );
    expectFailure(
      await inProcess('encode', PIER, '-o', 'tokens.txt', ...M),
      1,
      /token files end in \.json .* or \.jsonl/,
    );
    expectFailure(
      await inProcess('encode', PIER, GLACIER, '-o', 'two.json', ...M),
      1,
      /2 images make JSONL records; name the file \.jsonl/,
    );
    expectFailure(
      await inProcess('encode', PIER, '-o', join(PIER, 'x.json'), ...M),
      1,
      /pier\.jpg is a file, not a folder/,
    );
    expectFailure(
      await inProcess('preprocess', PIER, '--size', 'abc', '-o', 'x.png'),
      1,
      /Expected positive integer for --size but received "abc"/,
    );
    expectFailure(
      await inProcess('batch', PIER),
      1,
      /^styled-vq: error: batch needs --output \(see styled-vq batch --help\)/,
    );
    expectFailure(
      await inProcess('decode', 'x.json', '--format', 'gif'),
      1,
      /Expected one of png, jpeg, webp for --format but received "gif"/,
    );
    expectFailure(await inProcess('preprocess', PIER, '-o', PIER, ...M), 1, /is also an input/);
    expectFailure(
      await inProcess('preprocess', PIER, '-o', 'crop.gif', ...M),
      1,
      /Unsupported image extension "\.gif"/,
    );
  });

  test('--version', () => {
    const r = cli('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('encode', () => {
  test('one image: a tokens.json record on stdout, nothing on stderr with --device cpu', () => {
    const r = cli('encode', PIER, ...M);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec).toMatchObject({
      format: 'styled-vq-tokens',
      version: 1,
      model: { name: 'fixture-tiny', fingerprint: FINGERPRINT },
      source: PIER,
      original_size: [720, 360],
    });
    expect(rec.preprocessing.image_size).toBe(64);
    expect(rec.tokens).toHaveLength(36);
    for (const t of rec.tokens) expect(Number.isInteger(t) && t >= 0 && t < 1024).toBe(true);
    expect(rec.latents).toBeUndefined();
  });

  test('several images: JSONL, same tokens as one at a time, for any batch size', () => {
    const single = [PIER, GLACIER, PIER].map((f) => JSON.parse(cli('encode', f, ...M).stdout).tokens);
    for (const bs of ['1', '2', '8']) {
      const r = cli('encode', PIER, GLACIER, PIER, '--batch-size', bs, ...M);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines.map((l) => JSON.parse(l).tokens)).toEqual(single);
    }
    expect(single[0]).not.toEqual(single[1]);
  });

  test("-o writes the file; --json reports it; 'auto' on a machine without CUDA libraries is silent", () => {
    const r = cli('encode', PIER, '-o', 'pier.json', '--latents', '--json', '--model', FIXTURE_MODEL);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      output: 'pier.json',
      records: 1,
      model: { fingerprint: FINGERPRINT },
      execution: { device: 'auto' },
    });
    if (!cudaLibrariesInstalled()) {
      expect(summary.execution).toEqual({ device: 'auto', provider: 'cpu' });
      expect(errorLines(r.stderr)).toEqual([]);
    } else if (summary.execution.provider === 'cpu') {
      expect(r.stderr).toMatch(/^styled-vq: running on CPU: CUDA is not available/);
    }
    const rec = JSON.parse(readFileSync(join(cwd, 'pier.json'), 'utf8'));
    expect(rec.latents).toHaveLength(36);
    expect(rec.latents[0]).toHaveLength(16);
    const quiet = cli('encode', PIER, '--quiet', '--model', FIXTURE_MODEL);
    expect(quiet.code).toBe(0);
    expect(errorLines(quiet.stderr)).toEqual([]);
  });

  test('a 1x1 image works (upscaled like PIL does)', () => {
    writeFileSync(join(cwd, 'one.png'), pngOf(1, 1));
    const r = cli('encode', 'one.png', ...M);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ original_size: [1, 1] });
  });

  describe('bad images: exit 2, one clear line, no output file', () => {
    let dir: string;
    beforeAll(() => {
      dir = fresh('bad');
      writeFileSync(join(dir, 'empty.png'), '');
      writeFileSync(join(dir, 'text.png'), 'this is not a picture\n');
      writeFileSync(join(dir, 'truncated.jpg'), readFileSync(PIER).subarray(0, 20000));
      writeFileSync(join(dir, 'truncated.png'), pngOf(300, 200).subarray(0, 4000));
      writeFileSync(join(dir, 'bomb.png'), pngClaiming(30000, 30000));
      mkdirSync(join(dir, 'folder.png'));
    });

    test.each([
      ['missing file', 'missing.png', /missing\.png: file not found/],
      ['directory', 'folder.png', /folder\.png: is a directory/],
      ['zero-byte file', 'empty.png', /empty\.png: file is empty/],
      ['truncated JPEG', 'truncated.jpg', /truncated\.jpg: image file is truncated or corrupt/],
      ['truncated PNG', 'truncated.png', /truncated\.png: image file is truncated or corrupt/],
      ['text named .png', 'text.png', /text\.png: not an image/],
      [
        '30000x30000 (decompression bomb)',
        'bomb.png',
        /bomb\.png: image is 30000x30000 = 900000000 pixels, over the limit of 268402689/,
      ],
    ])('%s', (_what, name, pattern) => {
      const before = listDir(dir);
      const r = runCli(['encode', name, '-o', 'out.json', ...M], { cwd: dir });
      expectFailure(r, 2, pattern);
      expect(listDir(dir)).toEqual(before);
    });

    test('a bad image among good ones fails the whole command and writes nothing', () => {
      const before = listDir(dir);
      const r = runCli(['encode', PIER, 'empty.png', GLACIER, '-o', 'out.jsonl', ...M], { cwd: dir });
      expectFailure(r, 2, /empty\.png: file is empty/);
      expect(listDir(dir)).toEqual(before);
    });

    test('the pixel limit is configurable', () => {
      expectFailure(
        runCli(['encode', PIER, '--max-pixels', '1000', ...M], { cwd: dir }),
        2,
        /720x360 = 259200 pixels, over the limit of 1000/,
      );
    });
  });
});

describe('decode', () => {
  let dir: string;
  let record: Record<string, any>;
  beforeAll(() => {
    dir = fresh('decode');
    record = JSON.parse(cli('encode', PIER, '--latents', ...M).stdout);
    writeFileSync(join(dir, 'pier.json'), JSON.stringify(record));
  });
  const write = (name: string, content: unknown) =>
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  const run = (...args: string[]) => runCli([...args, ...M], { cwd: dir });

  test('a record -> PNG of the model size; default name from the token file', () => {
    const r = run('decode', 'pier.json', '-o', 'out.png');
    expect(r.code).toBe(0);
    expect(pngSize(join(dir, 'out.png'))).toEqual([64, 64]);
    expect(run('decode', 'pier.json').code).toBe(0);
    expect(pngSize(join(dir, 'pier.png'))).toEqual([64, 64]);
  });

  test('--size, JPEG and WebP by extension, --latents', () => {
    expect(run('decode', 'pier.json', '-o', 'big.png', '--size', '100x50').code).toBe(0);
    expect(pngSize(join(dir, 'big.png'))).toEqual([100, 50]);
    expect(run('decode', 'pier.json', '-o', 'out.jpg').code).toBe(0);
    expect(readFileSync(join(dir, 'out.jpg')).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(run('decode', 'pier.json', '-o', 'out.webp', '--latents').code).toBe(0);
    expect(readFileSync(join(dir, 'out.webp')).subarray(8, 12).toString('latin1')).toBe('WEBP');
  });

  test('JSONL: one image per record, error records skipped with a notice; --json lists outputs', () => {
    const err = {
      format: 'styled-vq-tokens',
      version: 1,
      model: record.model,
      source: 'broken.png',
      error: 'broken.png: file is empty (0 bytes)',
    };
    write('batch.jsonl', `${[record, err, record].map((x) => JSON.stringify(x)).join('\n')}\n`);
    const r = run('decode', 'batch.jsonl', '-o', 'b.png', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/skipped batch\.jsonl line 2 \(broken\.png\)/);
    const out = JSON.parse(r.stdout);
    expect(out.outputs.map((o: { output: string }) => o.output)).toEqual(['b-0.png', 'b-1.png']);
    expect(existsSync(join(dir, 'b-0.png')) && existsSync(join(dir, 'b-1.png'))).toBe(true);
  });

  describe('bad tokens: exit 2, one clear line, no output', () => {
    test.each([
      ['malformed JSON', '{"format": "styled-vq-tokens", "tokens": [1, 2', /bad\.json line 1 is not valid JSON/],
      [
        '35 tokens',
        () => ({ ...record, tokens: record.tokens.slice(1) }),
        /bad\.json line 1: expected 36 tokens, found 35/,
      ],
      [
        'token id >= codebook size',
        () => ({ ...record, tokens: [1024, ...record.tokens.slice(1)] }),
        /bad\.json line 1: token 1024 at position 0 is outside the codebook \[0, 1024\)/,
      ],
      ['negative token id', () => ({ ...record, tokens: [...record.tokens.slice(1), -3] }), /token -3 at position 35/],
      [
        'not a token record',
        '{"hello": "world"}',
        /bad\.json line 1: format is undefined, expected "styled-vq-tokens"/,
      ],
      [
        'tokens from another model',
        () => ({ ...record, model: { name: 'other', fingerprint: 'ffffffffffffffff' } }),
        new RegExp(
          `made by model "other" \\(fingerprint ffffffffffffffff\\), but the loaded model is "fixture-tiny" \\(fingerprint ${FINGERPRINT}\\).*--force`,
        ),
      ],
      ['missing token file', null, /Cannot read token file nothing\.json: no such file/],
    ])('%s', (_what, content, pattern) => {
      const name = content === null ? 'nothing.json' : 'bad.json';
      if (content !== null) write(name, typeof content === 'function' ? content() : content);
      const before = listDir(dir);
      expectFailure(run('decode', name, '-o', 'never.png'), 2, pattern);
      expect(listDir(dir)).toEqual(before);
    });

    test('--force decodes tokens from another model', () => {
      write('other.json', { ...record, model: { name: 'other', fingerprint: 'ffffffffffffffff' } });
      expect(run('decode', 'other.json', '-o', 'forced.png', '--force').code).toBe(0);
      expect(pngSize(join(dir, 'forced.png'))).toEqual([64, 64]);
    });
  });
});

describe('reconstruct and preprocess', () => {
  test('prints PSNR and SSIM; --json; --compare writes input | reconstruction', () => {
    const r = cli('reconstruct', PIER, ...M);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PSNR \d+\.\d\d dB {2}SSIM -?\d\.\d{4} {2}\(64x64, via tokens, fixture-tiny\)/);
    const j = JSON.parse(cli('reconstruct', PIER, '--json', '-o', 'cmp.png', '--compare', ...M).stdout);
    expect(j).toMatchObject({
      source: PIER,
      size: [64, 64],
      original_size: [720, 360],
      via: 'tokens',
      output: 'cmp.png',
    });
    expect(j.psnr).toBeGreaterThan(0);
    expect(j.ssim).toBeGreaterThan(-1);
    expect(j.ssim).toBeLessThanOrEqual(1);
    expect(j.tokens).toEqual(JSON.parse(cli('encode', PIER, ...M).stdout).tokens);
    // Two 4x tiles (256 px) under a title line, labelled: something to look at.
    expect(pngSize(join(cwd, 'cmp.png'))).toEqual([8 + 2 * (256 + 8), 26 + 256 + 4 + 3 * 17 + 8]);
  });

  test('preprocess writes the model input; --size needs no model', () => {
    expect(cli('preprocess', PIER, '-o', 'crop.png', ...M).code).toBe(0);
    expect(pngSize(join(cwd, 'crop.png'))).toEqual([64, 64]);
    const r = runCli(['preprocess', PIER, '-o', 'crop100.png', '--size', '100', '--json'], {
      cwd,
      env: { STYLED_VQ_MODEL: undefined },
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ size: [100, 100], original_size: [720, 360] });
    expectFailure(cli('preprocess', 'nothing.jpg', '-o', 'x.png', ...M), 2, /nothing\.jpg: file not found/);
    expect(existsSync(join(cwd, 'x.png'))).toBe(false);
  });
});

describe('quantize and dequantize', () => {
  test('tokens -> latents.npy -> the same tokens; records with latents -> the same tokens', () => {
    const dir = fresh('quant');
    const run = (...args: string[]) => runCli([...args, ...M], { cwd: dir });
    const rec = JSON.parse(run('encode', PIER, '--latents').stdout);
    writeFileSync(join(dir, 'rec.json'), JSON.stringify(rec));

    expect(run('dequantize', 'rec.json', '-o', 'lat.npy').code).toBe(0);
    const lat = decodeNpy(readFileSync(join(dir, 'lat.npy')));
    expect(lat.dtype).toBe('float32');
    expect(lat.shape).toEqual([1, 36, 16]);

    const q = run('quantize', 'lat.npy');
    expect(q.code).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({
      source: 'lat.npy[0]',
      tokens: rec.tokens,
      model: { fingerprint: FINGERPRINT },
    });

    expect(run('quantize', 'rec.json', '-o', 'ids.npy').code).toBe(0);
    const ids = decodeNpy(readFileSync(join(dir, 'ids.npy')));
    expect(ids.dtype).toBe('int32');
    expect(Array.from(ids.data as Int32Array)).toEqual(rec.tokens);

    const d = run('dequantize', 'ids.npy', '-o', 'lat.jsonl');
    expect(d.code).toBe(0);
    const back = JSON.parse(readFileSync(join(dir, 'lat.jsonl'), 'utf8'));
    expect(back.tokens).toEqual(rec.tokens);
    expect(Float32Array.from(back.latents.flat() as number[])).toEqual(lat.data);
  });

  test('bad arrays: wrong shape, wrong dtype, out-of-range ids', () => {
    const dir = fresh('quant-bad');
    const run = (...args: string[]) => runCli([...args, ...M], { cwd: dir });
    writeFileSync(join(dir, 'shape.json'), JSON.stringify([[1, 2, 3]]));
    expectFailure(run('quantize', 'shape.json'), 2, /shape\.json: expected numbers of shape \[36,16\] or \[N,36,16\]/);
    writeFileSync(join(dir, 'ids.json'), JSON.stringify(Array.from({ length: 36 }, (_, i) => (i === 5 ? 5000 : i))));
    expectFailure(run('dequantize', 'ids.json'), 2, /ids\.json row 0 position 5: token 5000 is outside the codebook/);
    expectFailure(run('quantize', 'ids.json'), 2, /expected numbers of shape \[36,16\]/);
  });
});

describe('info and doctor', () => {
  test('info --json: name, config, parameters, codebook, fingerprint, files', () => {
    const r = cli('info', '--json', '--model', FIXTURE_MODEL);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({
      name: 'fixture-tiny',
      fingerprint: FINGERPRINT,
      verified: true,
      numTokens: 36,
      latentDim: 16,
      codebook: { size: 1024, dim: 16 },
    });
    expect(info.parameters.encoder).toBeGreaterThan(0);
    expect(info.files.map((f: { path: string }) => f.path).sort()).toEqual([
      'codebook.onnx',
      'decoder.onnx',
      'dequantize.onnx',
      'encoder.onnx',
    ]);
    expect(cli('info', '--model', FIXTURE_MODEL).stdout).toMatch(/fingerprint +[0-9a-f]{16} +\(all files verified\)/);
  });

  test('STYLED_VQ_MODEL is used when --model is absent', () => {
    const r = runCli(['info', '--json'], { cwd, env: { STYLED_VQ_MODEL: FIXTURE_MODEL } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: 'env', name: 'fixture-tiny' });
  });

  test('doctor --json: versions, providers actually tried, the model status', () => {
    const r = cli('doctor', '--json', '--model', FIXTURE_MODEL);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.versions.node).toBe(process.versions.node);
    expect(d.versions.onnxruntime).toMatch(/^\d+\.\d+/);
    expect(d.versions.sharp).toMatch(/^\d+\.\d+/);
    expect(d.cpu.cores).toBeGreaterThan(0);
    expect(d.providers.map((p: { device: string }) => p.device)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(d.providers[0].ok).toBe(true);
    for (const p of d.providers) if (!p.ok) expect(p.message).toMatch(/is not available/);
    expect(d.model).toMatchObject({ ok: true, name: 'fixture-tiny', fingerprint: FINGERPRINT });
  });

  test('--device cuda without CUDA: exit 2 with how to get it', () => {
    const d = JSON.parse(cli('doctor', '--json', '--model', FIXTURE_MODEL).stdout);
    if (d.providers[1].ok) return; // a CUDA machine
    expectFailure(
      cli('encode', PIER, '--model', FIXTURE_MODEL, '--device', 'cuda'),
      2,
      /CUDA is not available: .*--device cpu/,
    );
  });
});

describe('damaged model packages', () => {
  test.each([
    ['missing ONNX file', (dir: string) => rmSync(join(dir, 'encoder.onnx')), /missing encoder\.onnx/],
    [
      'altered ONNX file',
      (dir: string) => {
        const f = join(dir, 'decoder.onnx');
        const b = readFileSync(f);
        b[100] ^= 1;
        writeFileSync(f, b);
      },
      /decoder\.onnx does not match its sha256/,
    ],
    [
      'swapped ONNX file',
      (dir: string) => copyFileSync(join(dir, 'codebook.onnx'), join(dir, 'dequantize.onnx')),
      /dequantize\.onnx has \d+ bytes, model\.json says \d+/,
    ],
    ['no model.json', (dir: string) => rmSync(join(dir, 'model.json')), /has no model\.json/],
  ])('%s: exit 2 naming the file, nothing written', (_what, damage, pattern) => {
    const dir = fresh('damaged');
    const model = copyFixtureModel(dir);
    damage(model);
    const before = listDir(dir);
    expectFailure(
      runCli(['encode', PIER, '-o', 'out.json', '--model', model, '--device', 'cpu'], { cwd: dir }),
      2,
      pattern,
    );
    expect(listDir(dir)).toEqual(before);
  });

  test('a directory that is not a package', () => {
    expectFailure(cli('info', '--model', EXAMPLES), 2, /has no model\.json/);
    expectFailure(cli('info', '--model', join(cwd, 'nope')), 2, /does not exist/);
  });
});
