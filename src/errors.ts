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

/**
 * An option named inside a message. The library speaks in option fields (`layoutFile`,
 * `overwrite: true`); the CLI renders the same message with its flags (`--layout-file`,
 * `--overwrite`) from one table, src/cli/flags.ts. `value` is shown after the name;
 * `true` marks a switch.
 */
export interface OptionRef {
  readonly field: string;
  readonly value?: string | true;
}

/** How a message names options: {@link fieldName} in the library, flags in the CLI. */
export type OptionNamer = (ref: OptionRef) => string;

export const fieldName: OptionNamer = ({ field, value }) =>
  value === true ? `${field}: true` : value === undefined ? field : `${field} ${value}`;

/** `opt('augIndex', '0..3')`, `opt('overwrite', true)`: an option reference for {@link msg}. */
export const opt = (field: string, value?: string | number | true): OptionRef => ({
  field,
  value: typeof value === 'number' ? String(value) : value,
});

const isOptionRef = (v: unknown): v is OptionRef =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as OptionRef).field === 'string' &&
  Object.keys(v).every((k) => k === 'field' || k === 'value');

/** A message whose option references each caller renders in its own words. */
export class Message {
  constructor(readonly parts: readonly (string | OptionRef)[]) {}

  render(namer: OptionNamer = fieldName): string {
    return this.parts.map((p) => (typeof p === 'string' ? p : namer(p))).join('');
  }

  /** The option fields named, in order (tests check each has a CLI flag). */
  get fields(): string[] {
    return this.parts.flatMap((p) => (typeof p === 'string' ? [] : [p.field]));
  }
}

/**
 * Tagged template: msg`name one with ${opt('layoutFile')}`. A Message or StyledVqError
 * value keeps its option references (its first line); other values are text.
 */
export function msg(strings: TemplateStringsArray, ...values: unknown[]): Message {
  const parts: (string | OptionRef)[] = [strings[0]];
  values.forEach((v, i) => {
    if (isOptionRef(v)) parts.push(v);
    else if (v instanceof Message) parts.push(...v.parts);
    else if (v instanceof StyledVqError) parts.push(...v.text.parts);
    else parts.push(String(v));
    parts.push(strings[i + 1]);
  });
  return new Message(parts.filter((p) => p !== ''));
}

export type MessageText = string | Message;

export class StyledVqError extends Error {
  readonly kind: ErrorKind;
  /** The message with its option references (the library's wording is `message`). */
  readonly text: Message;
  constructor(kind: ErrorKind, message: MessageText, options?: { cause?: unknown }) {
    const text = typeof message === 'string' ? new Message([message]) : message;
    super(text.render(fieldName), options);
    this.name = 'StyledVqError';
    this.kind = kind;
    this.text = text;
  }
}

export const usageError = (message: MessageText, cause?: unknown) => new StyledVqError('usage', message, { cause });
export const inputError = (message: MessageText, cause?: unknown) => new StyledVqError('input', message, { cause });
export const modelError = (message: MessageText, cause?: unknown) => new StyledVqError('model', message, { cause });
export const deviceError = (message: MessageText, cause?: unknown) => new StyledVqError('device', message, { cause });
export const interruptedError = (message: MessageText) => new StyledVqError('interrupted', message);
export const terminatedError = (message: MessageText) => new StyledVqError('terminated', message);
export const busyError = (message: MessageText) => new StyledVqError('busy', message);

/** The first line of an error's message (native libraries write several), never empty. */
export function firstLine(err: unknown, namer: OptionNamer = fieldName): string {
  const text = err instanceof StyledVqError ? err.text.render(namer) : err instanceof Error ? err.message : String(err);
  return text.trim().split('\n')[0] || 'unknown error';
}

/** Exit codes by kind; every other failure is 2. */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  usage: 1,
  input: 2,
  model: 2,
  device: 2,
  interrupted: 130,
  terminated: 143,
  busy: 75,
};

export function exitCodeFor(err: unknown): number {
  if (err instanceof StyledVqError) return EXIT_CODES[err.kind] ?? 2;
  return 2;
}
