/**
 * Wait for `p`, or stop waiting when `signal` aborts. The abort listener is removed as soon
 * as `p` settles: racing against one long-lived "aborted" promise instead would keep a
 * reaction (and with it every result) alive for each call — a leak that grows with the run.
 */
export function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T | 'aborted'> {
  if (!signal) return p;
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise<T | 'aborted'>((resolve, reject) => {
    const onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
