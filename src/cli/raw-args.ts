/**
 * Command-line arguments that are not valid UTF-8 (a file name with such bytes, issue
 * 15.9). Node.js hands them over decoded lossily, each bad byte as U+FFFD, so the file
 * named can no longer be opened. On Linux /proc/self/cmdline still holds the bytes: an
 * argument with U+FFFD is replaced by its bytes in escaped form (io/byte-names.ts), which
 * every file access turns back into the exact name. Elsewhere arguments stay as they are.
 */
import { readFileSync } from 'node:fs';
import { decodeName } from '../io/byte-names';

export function recoverRawArgs(args: readonly string[]): string[] {
  if (!args.some((a) => a.includes('\uFFFD'))) return [...args];
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return [...args];
  }
  const parts: Buffer[] = [];
  for (let from = 0; from < cmdline.length; ) {
    const end = cmdline.indexOf(0, from);
    parts.push(cmdline.subarray(from, end < 0 ? cmdline.length : end));
    from = end < 0 ? cmdline.length : end + 1;
  }
  // The arguments are the last entries (after node, its own options and the script).
  const raw = parts.slice(parts.length - args.length);
  if (raw.length !== args.length || raw.some((r, i) => r.toString('utf8') !== args[i])) return [...args];
  return raw.map((r, i) => (args[i].includes('\uFFFD') ? decodeName(r) : args[i]));
}
