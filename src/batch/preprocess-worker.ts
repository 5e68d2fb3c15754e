/**
 * Worker-thread entry for preprocess-pool.ts: receives { id, path, data? }, answers
 * { id, outcome } with the RGB buffer transferred (not copied). Settings come once, as
 * workerData. Runs only as compiled JavaScript (dist/), never imported by the library.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { preprocessFile, type PreprocessSettings } from './preprocess-job';

const settings = workerData as PreprocessSettings;

parentPort?.on('message', async (job: { id: number; path: string; data?: Uint8Array }) => {
  const outcome = await preprocessFile(job.data ?? job.path, settings);
  if (outcome.ok) {
    // A buffer of its own, so transferring it cannot detach memory shared with anything else.
    const rgb =
      outcome.rgb.byteOffset === 0 && outcome.rgb.byteLength === outcome.rgb.buffer.byteLength
        ? outcome.rgb
        : outcome.rgb.slice();
    parentPort!.postMessage({ id: job.id, outcome: { ...outcome, rgb } }, [rgb.buffer as ArrayBuffer]);
  } else {
    parentPort!.postMessage({ id: job.id, outcome });
  }
});
