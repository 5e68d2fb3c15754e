/**
 * One error type for everything a user can get wrong. `kind` decides the CLI exit code:
 * usage -> 1 (bad flags/arguments), input -> 2 (bad image/tokens/file), model -> 2 (bad
 * or mismatched model package), device -> 2 (an execution provider that cannot run here),
 * interrupted -> 130 (stopped by Ctrl-C, like a shell reports SIGINT), terminated -> 143
 * (stopped by SIGTERM, what Slurm, Kubernetes and Ray send first: 128 + 15), busy -> 75
 * (EX_TEMPFAIL: another process is writing the same output; retry later).
 * Only bin/ turns these into a message and an exit code.
 */
export type ErrorKind = 'usage' | 'input' | 'model' | 'device' | 'interrupted' | 'terminated' | 'busy';

export class StyledVqError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StyledVqError';
    this.kind = kind;
  }
}

export const usageError = (message: string, cause?: unknown) => new StyledVqError('usage', message, { cause });
export const inputError = (message: string, cause?: unknown) => new StyledVqError('input', message, { cause });
export const modelError = (message: string, cause?: unknown) => new StyledVqError('model', message, { cause });
export const deviceError = (message: string, cause?: unknown) => new StyledVqError('device', message, { cause });
export const interruptedError = (message: string) => new StyledVqError('interrupted', message);
export const terminatedError = (message: string) => new StyledVqError('terminated', message);
export const busyError = (message: string) => new StyledVqError('busy', message);

/** Exit codes by kind; every other failure is 2. */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = { usage: 1, input: 2, model: 2, device: 2, interrupted: 130, terminated: 143, busy: 75 };

export function exitCodeFor(err: unknown): number {
  if (err instanceof StyledVqError) return EXIT_CODES[err.kind] ?? 2;
  return 2;
}
