/**
 * .npy reading and writing: byte-exact headers as numpy writes them (format 1.0, data on a
 * 64-byte boundary), round trips, and clear refusals. When /usr/bin/python3 has numpy
 * (CI installs python3-numpy), numpy itself reads our files and writes files we read.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../src/tokens/npy';
import { StyledVqError } from '../src/errors';

const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const withNumpy = hasNumpy ? test : test.skip;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'styled-vq-npy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npy', () => {
  test('header is what numpy.save writes (v1.0, padded to 64 bytes, newline-terminated)', () => {
    const buf = encodeNpy(new Float32Array(2 * 36 * 16), [2, 36, 16]);
    expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    const headerLen = buf.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    const header = buf.subarray(10, 10 + headerLen).toString('latin1');
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 36, 16), }";
    expect(header).toBe(`${dict + ' '.repeat(headerLen - dict.length - 1)}\n`);
    expect(buf.length).toBe(10 + headerLen + 2 * 36 * 16 * 4);
  });

  test('1-d shapes keep the trailing comma', () => {
    const buf = encodeNpy(Int32Array.from([1, 2, 3]), [3]);
    expect(buf.toString('latin1', 10, 10 + buf.readUInt16LE(8))).toContain("'shape': (3,), }");
  });

  test.each([
    ['float32', Float32Array.from([0.5, -1.25, 3e-8, 7])],
    ['int32', Int32Array.from([0, 1023, -5, 2 ** 31 - 1])],
    ['int64', BigInt64Array.from([0n, 1023n, -5n, 2n ** 40n])],
    ['uint8', Uint8Array.from([0, 255, 7, 8])],
  ])('round trip %s', async (dtype, data) => {
    const path = join(dir, `rt-${dtype}.npy`);
    await writeNpy(path, data, [2, 2]);
    const back = await readNpy(path);
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual([2, 2]);
    expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
  });

  test('reads Fortran order and big-endian; refuses non-npy and truncated data', () => {
    expect(() => decodeNpy(Buffer.from('hello world, not numpy'), 'x.npy')).toThrow(
      /x.npy is not a readable .npy file: missing/,
    );
    const f = encodeNpy(Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const fortran = Buffer.from(
      f.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "),
      'latin1',
    );
    expect(Array.from(decodeNpy(fortran, 'f.npy').data as Float32Array)).toEqual([1, 3, 2, 4]); // column-major on disk
    const big = Buffer.from(f.toString('latin1').replace("'<f4'", "'>f4'"), 'latin1');
    for (const [i, v] of [1.5, -2, 3.25, 4].entries()) big.writeFloatBE(v, big.length - 16 + 4 * i);
    expect(Array.from(decodeNpy(big, 'b.npy').data as Float32Array)).toEqual([1.5, -2, 3.25, 4]);
    expect(() => decodeNpy(f.subarray(0, f.length - 3), 't.npy')).toThrow(/truncated/);
    try {
      decodeNpy(Buffer.alloc(3), 'e.npy');
    } catch (err) {
      expect(err).toBeInstanceOf(StyledVqError);
      expect((err as StyledVqError).kind).toBe('input');
    }
  });

  test('missing file is an input error naming it', async () => {
    await expect(readNpy(join(dir, 'nope.npy'))).rejects.toThrow(/Cannot read .*nope.npy: no such file/);
  });

  withNumpy('numpy reads what we write and we read what numpy writes', async () => {
    const ours = join(dir, 'ours.npy');
    const data = Float32Array.from({ length: 2 * 36 * 4 }, (_, i) => i / 7);
    await writeNpy(ours, data, [2, 36, 4]);
    const theirs = join(dir, 'theirs.npy');
    const py = spawnSync('/usr/bin/python3', [
      '-c',
      [
        'import numpy as np, sys',
        'a = np.load(sys.argv[1])',
        'assert a.dtype == np.float32 and a.shape == (2, 36, 4), (a.dtype, a.shape)',
        'assert np.array_equal(a.ravel(), (np.arange(2*36*4) / 7).astype(np.float32))',
        'np.save(sys.argv[2], np.arange(72, dtype=np.int64).reshape(2, 36))',
      ].join('\n'),
      ours,
      theirs,
    ]);
    expect(py.stderr.toString()).toBe('');
    expect(py.status).toBe(0);
    const back = await readNpy(theirs);
    expect(back.dtype).toBe('int64');
    expect(back.shape).toEqual([2, 36]);
    expect(Number((back.data as BigInt64Array)[71])).toBe(71);
    // Byte-identical to numpy's own file for the same array.
    const same = join(dir, 'same.npy');
    await writeNpy(
      same,
      BigInt64Array.from({ length: 72 }, (_, i) => BigInt(i)),
      [2, 36],
    );
    expect(readFileSync(same)).toEqual(readFileSync(theirs));
  });
});
