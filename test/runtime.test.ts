/**
 * Execution providers, for real: 'auto' falls back to CPU and says why; an explicit GPU
 * device that cannot load fails with a message saying how to get it. On a machine where a
 * GPU provider does load, the same tests check that it is used instead.
 */
import { StyledVqError } from '../src/errors';
import { Model } from '../src/model/model';
import { cudaLibrariesInstalled, DEVICES, openSession, parseDevice, probeProvider } from '../src/runtime/onnx';
import { FIXTURE_MODEL } from './helpers/fixtures';
import { join } from 'node:path';

const encoder = join(FIXTURE_MODEL, 'encoder.onnx');

describe('device table', () => {
  test('maps each device to execution providers', () => {
    expect(DEVICES.cpu).toEqual(['cpu']);
    expect(DEVICES.cuda[0]).toBe('cuda');
    expect(DEVICES.webgpu[0]).toBe('webgpu');
    expect(DEVICES.auto).toEqual(['cuda', 'cpu']);
  });

  test('an unknown device names the valid ones', () => {
    expect(() => parseDevice('gpu')).toThrow('Unsupported device "gpu". Should be one of: auto, cpu, cuda, webgpu.');
    try {
      parseDevice('gpu');
    } catch (err) {
      expect((err as StyledVqError).kind).toBe('usage');
    }
  });
});

describe('providers', () => {
  test('cpu always opens', async () => {
    const { session, execution } = await openSession(encoder, { device: 'cpu', threads: 1 });
    expect(execution).toEqual({ device: 'cpu', provider: 'cpu' });
    await session.release();
  });

  test("'auto' runs on CUDA where it loads; without CUDA libraries it is CPU, silently; installed but broken: reports why", async () => {
    const cuda = await probeProvider('cuda');
    const { session, execution } = await openSession(encoder, { device: 'auto' });
    await session.release();
    if (cuda.ok) {
      expect(execution).toEqual({ device: 'auto', provider: 'cuda' });
    } else if (!cudaLibrariesInstalled()) {
      expect(execution).toEqual({ device: 'auto', provider: 'cpu' });
    } else {
      expect(execution.provider).toBe('cpu');
      expect(execution.fallback).toMatch(/^CUDA is not available/);
    }
  });

  test('the fallback reaches model results', async () => {
    const model = await Model.load(FIXTURE_MODEL, { device: 'auto', threads: 1 });
    try {
      const latents = await model.encode({ data: new Float32Array(3 * 64 * 64), dims: [1, 3, 64, 64] });
      expect(latents.dims).toEqual([1, 36, 16]);
      const ex = model.execution!;
      expect(ex.device).toBe('auto');
      if (ex.provider === 'cpu' && cudaLibrariesInstalled()) expect(ex.fallback).toMatch(/CUDA is not available/);
      if (!cudaLibrariesInstalled()) expect(ex.fallback).toBeUndefined();
    } finally {
      await model.dispose();
    }
  });

  test('explicit cuda without its libraries fails in one line naming what is missing and how to get it', async () => {
    if ((await probeProvider('cuda')).ok) return; // a CUDA machine: nothing to refuse
    const err = await openSession(encoder, { device: 'cuda' }).catch((e) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.kind).toBe('device');
    expect(err.message).toMatch(/^CUDA is not available/);
    if (!cudaLibrariesInstalled()) {
      expect(err.message).toMatch(
        /libonnxruntime_providers_cuda\.so, libonnxruntime_providers_shared\.so\) are not installed/,
      );
      expect(err.message).toMatch(/styled-vq setup cuda/);
    }
    expect(err.message).not.toMatch(/\n/);
  });

  test('explicit webgpu fails clearly where no adapter exists', async () => {
    if ((await probeProvider('webgpu')).ok) return; // a GPU with Vulkan: webgpu works
    const err = await openSession(encoder, { device: 'webgpu' }).catch((e) => e);
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.kind).toBe('device');
    expect(err.message).toMatch(/^WebGPU is not available/);
    expect(err.message).toMatch(/--device cpu/);
  });

  test('a corrupt graph is a model error naming the file', async () => {
    const err = await openSession(Buffer.from('not an onnx graph'), { device: 'cpu', label: 'broken.onnx' }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(StyledVqError);
    expect(err.kind).toBe('model');
    expect(err.message).toMatch(/^Cannot load broken\.onnx/);
  });
});
