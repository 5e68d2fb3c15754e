/**
 * What `batch` reads, listed lazily and always in the same order (so a resumed run can
 * check, input by input, that it is finishing the same job). Each spec is
 *   - a folder: its image files (by extension), sorted; all depths with `recursive`;
 *   - a glob pattern ("photos/**\/*.jpg", quoted so the shell leaves it alone);
 *   - a list file (.txt, .lst, .list): one path per line, relative to the list's folder;
 *     blank lines and lines starting with "#" are skipped;
 *   - a webdataset shard (.tar): its image members, in archive order (tar-input.ts);
 *   - anything else: one image file.
 * Specs are listed one after another, in the order given.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { dirname, extname, isAbsolute, join, normalize } from 'node:path';
import { createInterface } from 'node:readline';
import { usageError } from '../errors';
import { decodeName, fsPath } from '../io/byte-names';
import { walkSorted, type WalkEntry } from './dir-walk';
import { hasGlobMagic, planGlob } from './glob';
import { checkTarArchive, tarMembers } from './tar-input';

/** Extensions a folder listing picks up (case-insensitive); other files are counted as ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = [
  '.jpg',
  '.jpeg',
  '.jpe',
  '.jfif',
  '.png',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
  '.heic',
  '.heif',
  '.jp2',
  '.jxl',
];

const LIST_EXTENSIONS: readonly string[] = ['.txt', '.lst', '.list'];
const TAR_EXTENSIONS: readonly string[] = ['.tar'];

export const isImageName = (name: string): boolean => IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());

/** One input: the path recorded as `source`, or a listing failure to record in its place. */
export interface ListedInput {
  source: string;
  /** Set when the input could not even be listed (an unreadable folder). */
  error?: string;
  /** The image's bytes when it does not live in a file of its own (a tar member). */
  data?: Uint8Array;
}

export type SpecKind = 'folder' | 'glob' | 'list' | 'tar' | 'file';

export interface ListOptions {
  /** Enter subfolders of folder specs. */
  recursive?: boolean;
  /** Read the bytes of tar members (default true); false lists names only (counting). */
  withData?: boolean;
}

/** Decide what a spec is; cheap mistakes (nothing there) are refused before any slow work. */
export async function specKind(spec: string): Promise<SpecKind> {
  if (!spec) throw usageError('An input spec is empty');
  const stat = await fs.stat(fsPath(spec)).catch(() => null);
  if (stat?.isDirectory()) return 'folder';
  if (stat && LIST_EXTENSIONS.includes(extname(spec).toLowerCase())) return 'list';
  if (stat?.isFile() && TAR_EXTENSIONS.includes(extname(spec).toLowerCase())) return 'tar';
  if (stat) return 'file';
  if (hasGlobMagic(spec)) return 'glob';
  throw usageError(`Input ${spec}: no such file or folder (give a folder, a quoted glob, a list .txt, or image files)`);
}

/**
 * Lists the inputs of all specs lazily. `ignored` counts files a folder listing skipped
 * because their extension is not an image's.
 */
export class InputList implements AsyncIterable<ListedInput> {
  ignored = 0;

  constructor(
    readonly specs: readonly string[],
    private readonly options: ListOptions = {},
  ) {
    if (!specs.length)
      throw usageError('Give at least one input: a folder, a quoted glob, a list .txt, or image files');
  }

  /** Check every spec exists (or is a glob), and every tar is whole, before any slow work starts. */
  async check(): Promise<SpecKind[]> {
    const kinds = await Promise.all(this.specs.map(specKind));
    for (let i = 0; i < kinds.length; i++) if (kinds[i] === 'tar') await checkTarArchive(this.specs[i]);
    return kinds;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ListedInput> {
    for (const spec of this.specs) {
      const kind = await specKind(spec);
      if (kind === 'file') yield { source: normalize(spec) };
      else if (kind === 'list') yield* listFile(spec);
      else if (kind === 'folder') yield* this.folder(spec);
      else if (kind === 'tar') yield* this.tar(spec);
      else yield* this.glob(spec);
    }
  }

  private async *folder(dir: string): AsyncGenerator<ListedInput> {
    yield* fromWalk(
      walkSorted(dir, {
        recursive: !!this.options.recursive,
        accept: isImageName,
        onRejected: () => this.ignored++,
      }),
    );
  }

  private async *tar(path: string): AsyncGenerator<ListedInput> {
    const members = tarMembers(path, {
      accept: isImageName,
      onRejected: () => this.ignored++,
      withData: this.options.withData,
    });
    for await (const m of members)
      yield { source: `${normalize(path)}/${m.name}`, ...(m.data ? { data: m.data } : {}) };
  }

  private async *glob(pattern: string): AsyncGenerator<ListedInput> {
    const plan = planGlob(pattern);
    const stat = await fs.stat(fsPath(plan.base)).catch(() => null);
    if (!stat?.isDirectory()) return; // nothing can match under a missing folder
    yield* fromWalk(
      walkSorted(plan.base, { recursive: true, accept: (rel) => plan.match.test(rel), enter: plan.enter }),
    );
  }
}

async function* fromWalk(walk: AsyncGenerator<WalkEntry>): AsyncGenerator<ListedInput> {
  for await (const entry of walk)
    yield entry.error ? { source: entry.path, error: entry.error } : { source: entry.path };
}

async function* listFile(list: string): AsyncGenerator<ListedInput> {
  const base = dirname(list);
  // latin1 keeps every byte as one char: a listed name that is not UTF-8 is escaped, not lost (io/byte-names.ts).
  const lines = createInterface({ input: createReadStream(fsPath(list), 'latin1'), crlfDelay: Infinity });
  for await (const raw of lines) {
    const line = decodeName(Buffer.from(raw, 'latin1')).trim();
    if (!line || line.startsWith('#')) continue;
    yield { source: isAbsolute(line) ? normalize(line) : join(base, line) };
  }
}

/**
 * Count the inputs without touching them (for a progress total); as cheap as a listing.
 * Stops early (resolving with the count so far) when `signal` aborts.
 */
export async function countInputs(
  specs: readonly string[],
  options: ListOptions & { signal?: AbortSignal } = {},
): Promise<number> {
  let n = 0;
  for await (const _ of new InputList(specs, { ...options, withData: false })) {
    if (options.signal?.aborted) break;
    n++;
  }
  return n;
}
