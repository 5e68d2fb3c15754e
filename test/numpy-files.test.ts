/**
 * Arrays as Debian's numpy writes them (issue 10 point 6, issue 15 point 13): every file
 * here is written by /usr/bin/python3's numpy, not by our writer, and read by the real CLI.
 * Fortran order, float16/float64, big-endian, (u)int8-64 token ids and .npz members are
 * read exactly; lossy or out-of-range values are refused with the position; a header that
 * is not exactly numpy's three-key dict literal is refused.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeNpy } from '../src/tokens/npy';
import { errorLines, runCli } from './helpers/cli';
import { FIXTURE_MODEL, tempDir } from './helpers/fixtures';

const M = ['--model', FIXTURE_MODEL, '--device', 'cpu'];
let tmp: ReturnType<typeof tempDir>;
const at = (name: string) => join(tmp.dir, name);
const cli = (...args: string[]) => runCli(args, { cwd: tmp.dir });

/** Written by numpy: token ids < 1024 and latents, [3,36] and [3,36,16], in many encodings. */
const NUMPY_SCRIPT = `
import numpy as np, sys, os
os.chdir(sys.argv[1])
rng = np.random.default_rng(7)
tok = rng.integers(0, 1024, size=(3, 36))
tok8 = rng.integers(0, 256, size=(3, 36))
lat = rng.standard_normal((3, 36, 16))
np.save('tok_ref.npy', tok.astype('<i4'))
np.save('tok_u16.npy', tok.astype(np.uint16))
np.save('tok_i64_be.npy', tok.astype('>i8'))
np.save('tok_fortran.npy', np.asfortranarray(tok.astype(np.int32)))
np.save('tok_f64_whole.npy', tok.astype(np.float64))
np.save('tok8_ref.npy', tok8.astype('<i4'))
np.save('tok8_u8.npy', tok8.astype(np.uint8))
bad = tok.astype(np.uint16); bad[2, 5] = 1024
np.save('tok_out_of_range.npy', bad)
frac = tok.astype(np.float32); frac[1, 3] = 1.5
np.save('tok_fraction.npy', frac)
np.save('lat_ref.npy', lat.astype('<f4'))
np.save('lat_f64.npy', lat)
np.save('lat_f64_be.npy', lat.astype('>f8'))
np.save('lat_fortran.npy', np.asfortranarray(lat.astype(np.float32)))
np.save('lat16_ref.npy', lat.astype(np.float16).astype(np.float32))
np.save('lat_f16.npy', lat.astype(np.float16))
huge = lat.copy(); huge[0, 1, 2] = 1e39
np.save('lat_overflow.npy', huge)
np.savez('arrays.npz', tokens=tok.astype(np.uint16), latents=lat.astype(np.float32))
np.savez_compressed('compressed.npz', tokens=tok.astype(np.int64))
assert np.load('tok_fortran.npy').flags.f_contiguous
`;

beforeAll(() => {
  tmp = tempDir('styled-vq-numpy-');
  const py = spawnSync('/usr/bin/python3', ['-c', NUMPY_SCRIPT, tmp.dir]);
  // No skip: CI installs python3-numpy (.ci/run); without it this suite must fail, not pass empty.
  expect({ status: py.status, stderr: py.stderr.toString() }).toEqual({ status: 0, stderr: '' });
});
afterAll(() => tmp.cleanup());

const tokensOf = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).tokens as number[]);
function expectFailure(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect({ code: r.code, lines: errorLines(r.stderr) }).toEqual({ code: 2, lines: [expect.stringMatching(pattern)] });
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

describe('token ids numpy wrote, as dequantize reads them', () => {
  let ref: number[][];
  beforeAll(() => {
    const r = cli('dequantize', 'tok_ref.npy', ...M);
    expect(r.code).toBe(0);
    ref = tokensOf(r.stdout);
    expect(ref).toHaveLength(3);
  });
  test.each(['tok_u16.npy', 'tok_i64_be.npy', 'tok_fortran.npy', 'tok_f64_whole.npy'])(
    '%s: the same ids as int32 C order',
    (file) => {
      const r = cli('dequantize', file, ...M);
      expect(r.code).toBe(0);
      expect(tokensOf(r.stdout)).toEqual(ref);
    },
  );
  test('uint8', () => {
    expect(tokensOf(cli('dequantize', 'tok8_u8.npy', ...M).stdout)).toEqual(
      tokensOf(cli('dequantize', 'tok8_ref.npy', ...M).stdout),
    );
  });
  test('.npz members by --key (numpy.savez), and savez_compressed', () => {
    expect(tokensOf(cli('dequantize', 'arrays.npz', '--key', 'tokens', ...M).stdout)).toEqual(ref);
    expect(tokensOf(cli('dequantize', 'compressed.npz', ...M).stdout)).toEqual(ref);
    expectFailure(
      cli('dequantize', 'arrays.npz', ...M),
      /arrays\.npz holds 2 arrays \((tokens, latents|latents, tokens)\); choose one with --key/,
    );
    expectFailure(
      cli('dequantize', 'arrays.npz', '--key', 'nope', ...M),
      /arrays\.npz has no array named "nope" \(it has: /,
    );
  });
  test('out of range and fractional ids are refused with their position', () => {
    expectFailure(
      cli('dequantize', 'tok_out_of_range.npy', ...M),
      /tok_out_of_range\.npy row 2 position 5: token 1024 is outside the codebook \[0, 1024\)/,
    );
    expectFailure(
      cli('dequantize', 'tok_fraction.npy', ...M),
      /tok_fraction\.npy row 1 position 3: 1\.5 is not a whole number/,
    );
  });
  test('decode takes a token array [N,36] (and an .npz member) like records', () => {
    const r = cli('decode', 'tok_u16.npy', '-o', join('dec', 'img.png'), '--json', ...M);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).outputs.map((o: { output: string }) => o.output)).toEqual([
      'dec/img-0.png',
      'dec/img-1.png',
      'dec/img-2.png',
    ]);
    const z = cli('decode', 'arrays.npz', '--key', 'tokens', '-o', join('decz', 'img.png'), ...M);
    expect(z.code).toBe(0);
    expect(readFileSync(at('decz/img-2.png')).equals(readFileSync(at('dec/img-2.png')))).toBe(true);
  });
});

describe('latents numpy wrote, as quantize reads them', () => {
  test.each([
    ['lat_f64.npy', 'lat_ref.npy'],
    ['lat_f64_be.npy', 'lat_ref.npy'],
    ['lat_fortran.npy', 'lat_ref.npy'],
    ['lat_f16.npy', 'lat16_ref.npy'],
  ])('%s quantizes like %s (float32, C order)', (file, ref) => {
    const a = cli('quantize', file, ...M);
    expect(a.code).toBe(0);
    expect(tokensOf(a.stdout)).toEqual(tokensOf(cli('quantize', ref, ...M).stdout));
  });
  test('.npz member; a value beyond float32 is refused', () => {
    expect(tokensOf(cli('quantize', 'arrays.npz', '--key', 'latents', ...M).stdout)).toEqual(
      tokensOf(cli('quantize', 'lat_ref.npy', ...M).stdout),
    );
    expectFailure(
      cli('quantize', 'lat_overflow.npy', ...M),
      /lat_overflow\.npy: value 1e\+39 at flat index 18 is outside the float32 range/,
    );
  });
});

describe('the header is parsed as numpy parses it (a strict literal dict, exactly three keys)', () => {
  const withHeader = (dict: string, data = Buffer.alloc(8)) => {
    const h = `${dict + ' '.repeat(63 - ((10 + dict.length) % 64))}\n`;
    const len = Buffer.alloc(2);
    len.writeUInt16LE(h.length);
    return Buffer.concat([
      Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]),
      len,
      Buffer.from(h, 'latin1'),
      data,
    ]);
  };
  /** What numpy itself does with the file: 'ok' or its exception's class name. */
  const numpySays = (buf: Buffer) => {
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import numpy as np, sys, io\ntry:\n np.load(io.BytesIO(sys.stdin.buffer.read())); print("ok")\nexcept Exception as e: print(type(e).__name__)',
      ],
      { input: buf },
    );
    return py.stdout.toString().trim();
  };

  test('what numpy writes is read', () => {
    expect(decodeNpy(withHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }")).data).toEqual(
      new Int32Array(2),
    );
    expect(decodeNpy(withHeader('{"descr": "<i4", "fortran_order": False, "shape": (2,)}')).shape).toEqual([2]);
  });

  test.each([
    [
      'a duplicated key (numpy takes the last one: int32 vs float32)',
      "{'descr': '<f4', 'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
      /the key 'descr' appears twice/,
      'ok',
    ],
    [
      'an extra key',
      "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
      /exactly the keys 'descr', 'fortran_order', 'shape'; found 'descr', 'extra', 'fortran_order', 'shape'/,
      'ValueError',
    ],
    ['a missing key', "{'descr': '<i4', 'shape': (2,)}", /exactly the keys/, 'ValueError'],
    [
      'a shape that is not a tuple',
      "{'descr': '<i4', 'fortran_order': False, 'shape': (2)}",
      /not a tuple/,
      'ValueError',
    ],
    [
      'a negative dimension',
      "{'descr': '<i4', 'fortran_order': False, 'shape': (-2,)}",
      /non-negative integers/,
      'ValueError',
    ],
    [
      'code instead of a literal',
      "{'descr': '<i4', 'fortran_order': False, 'shape': __import__('os').getpid()}",
      /not a Python literal/,
      'ValueError',
    ],
    [
      'fortran_order as a string',
      "{'descr': '<i4', 'fortran_order': 'False', 'shape': (2,)}",
      /'fortran_order' must be True or False/,
      'ValueError',
    ],
    [
      'text after the dict',
      "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)} x",
      /unexpected text after the dict/,
      'ValueError',
    ],
    [
      'a structured dtype',
      "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,)}",
      /structured dtypes are not supported/,
      'ok',
    ],
  ])('refused: %s', (_what, dict, pattern, numpy) => {
    const buf = withHeader(dict);
    expect(() => decodeNpy(buf, 'h.npy')).toThrow(pattern);
    expect(numpySays(buf)).toBe(numpy); // where numpy reads it anyway, we refuse on purpose
  });
});
