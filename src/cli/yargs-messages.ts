/**
 * yargs' own messages ("Not enough non-option arguments: got 0, need at least 1") turned
 * into one line that says what was expected and what to do.
 */
import { COMMANDS } from '../commands';

const flag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

function commandOf(args: readonly string[]): { name: string; usage: string } | undefined {
  for (const a of args) {
    if (a.startsWith('-')) continue;
    const c = COMMANDS.find((m) => String(m.command).split(' ')[0] === a);
    return c ? { name: a, usage: String(c.command) } : undefined;
  }
  return undefined;
}

export function friendlyYargsMessage(msg: string, args: readonly string[]): string {
  const text = msg.replace(/\s*\n\s*/g, ' ').trim();
  const cmd = commandOf(args);
  const help = cmd ? `styled-vq ${cmd.name} --help` : 'styled-vq --help';
  let m: RegExpExecArray | null;
  if (/^Not enough non-option arguments/.test(text) && cmd) {
    const wanted = cmd.usage.split(' ').slice(1).join(' ');
    return `${cmd.name} needs ${wanted}: e.g. styled-vq ${cmd.name} ${wanted.replace(/[<>[\]]/g, '').replace(/\.\.\./g, ' ...')} (see ${help})`;
  }
  if ((m = /^Missing required arguments?: (.+)$/.exec(text))) {
    const names = m[1].split(',').map((s) => flag(s.trim()));
    return `${cmd ? `${cmd.name} ` : ''}needs ${names.join(' and ')} (see ${help})`;
  }
  if ((m = /^Not enough arguments following: (.+)$/.exec(text)))
    return `${flag(m[1].trim())} needs a value (see ${help})`;
  if ((m = /^Unknown arguments?: (.+)$/.exec(text))) {
    const names = m[1].split(',').map((s) => s.trim());
    const what = names.map((n) =>
      n.length > 1 && !/^[\w-]+$/.test(n)
        ? JSON.stringify(n)
        : n.length === 1
          ? `-${n}`
          : /^[a-z-]+$/i.test(n) && args.some((a) => a === `--${n}` || a.startsWith(`--${n}=`))
            ? `--${n}`
            : JSON.stringify(n),
    );
    return `Unknown option or extra argument ${what.join(', ')} (see ${help})`;
  }
  if ((m = /^Invalid values?: Argument: ([\w-]+), Given: (.+?), Choices: (.+)$/.exec(text))) {
    return `Expected one of ${m[3].replace(/"/g, '')} for ${flag(m[1])} but received ${m[2]}`;
  }
  if ((m = /^Arguments (\S+) and (\S+) are mutually exclusive$/.exec(text)))
    return `${flag(m[1])} and ${flag(m[2])} cannot be used together (see ${help})`;
  if ((m = /^Implications failed: (\S+) -> (\S+)$/.exec(text)))
    return `${flag(m[1])} needs ${flag(m[2])} (see ${help})`;
  return `${text} (see ${help})`;
}
