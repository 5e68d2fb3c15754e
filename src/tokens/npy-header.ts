/**
 * The .npy header, parsed the way numpy reads it (numpy.lib.format): a Python literal
 * dict with exactly the keys 'descr', 'fortran_order' and 'shape', nothing else. This is
 * a strict literal parser, not a pattern match: anything numpy's literal_eval would not
 * accept, or a dict numpy would not read as an array header, is refused. Where numpy
 * silently takes the last of duplicated keys, we refuse the file (two readers must never
 * read one file differently).
 */
import { inputError } from '../errors';

export interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

type Literal = string | boolean | null | number | Literal[] | { tuple: Literal[] } | Map<string, Literal>;

class LiteralParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly fail: (what: string) => Error,
  ) {}

  private ws(): void {
    while (this.i < this.s.length && ' \t\r\n'.includes(this.s[this.i])) this.i++;
  }

  private peek(): string {
    this.ws();
    return this.s[this.i] ?? '';
  }

  private expect(c: string): void {
    if (this.peek() !== c)
      throw this.fail(
        `expected '${c}' at offset ${this.i}, found ${JSON.stringify(this.s[this.i] ?? 'end of header')}`,
      );
    this.i++;
  }

  /** The whole header: one dict, then only whitespace. */
  top(): Map<string, Literal> {
    if (this.peek() !== '{') throw this.fail('the header is not a Python dict');
    const v = this.value(0) as Map<string, Literal>;
    this.ws();
    if (this.i !== this.s.length) throw this.fail(`unexpected text after the dict at offset ${this.i}`);
    return v;
  }

  private value(depth: number): Literal {
    if (depth > 8) throw this.fail('nested too deeply');
    const c = this.peek();
    if (c === '{') return this.dict(depth);
    if (c === '(') return { tuple: this.sequence('(', ')', depth) };
    if (c === '[') return this.sequence('[', ']', depth);
    if (c === "'" || c === '"') return this.string();
    const word = /^(True|False|None|[+-]?\d+)(?![\w.])/.exec(this.s.slice(this.i, this.i + 40));
    if (!word) throw this.fail(`not a Python literal at offset ${this.i}`);
    this.i += word[1].length;
    if (word[1] === 'True') return true;
    if (word[1] === 'False') return false;
    if (word[1] === 'None') return null;
    const n = Number(word[1]);
    if (!Number.isSafeInteger(n)) throw this.fail(`integer ${word[1]} is too large`);
    return n;
  }

  private string(): string {
    const q = this.s[this.i++];
    let out = '';
    while (this.i < this.s.length && this.s[this.i] !== q) {
      const c = this.s[this.i++];
      if (c === '\\' || c === '\n') throw this.fail('escapes and line breaks in strings are not used by numpy headers');
      out += c;
    }
    if (this.s[this.i] !== q) throw this.fail('unterminated string');
    this.i++;
    return out;
  }

  private sequence(open: string, close: string, depth: number): Literal[] {
    this.expect(open);
    const items: Literal[] = [];
    let sawComma = false;
    while (this.peek() !== close) {
      items.push(this.value(depth + 1));
      if (this.peek() === ',') {
        this.i++;
        sawComma = true;
      } else break;
    }
    this.expect(close);
    // (5) is the integer 5 in Python, not a tuple: numpy would reject the shape.
    if (open === '(' && items.length === 1 && !sawComma)
      throw this.fail('a parenthesised value without a comma is not a tuple');
    return items;
  }

  private dict(depth: number): Map<string, Literal> {
    this.expect('{');
    const m = new Map<string, Literal>();
    while (this.peek() !== '}') {
      const kc = this.peek();
      if (kc !== "'" && kc !== '"') throw this.fail(`dict keys must be strings (offset ${this.i})`);
      const key = this.string();
      this.expect(':');
      if (m.has(key)) throw this.fail(`the key '${key}' appears twice`);
      m.set(key, this.value(depth + 1));
      if (this.peek() === ',') this.i++;
      else break;
    }
    this.expect('}');
    return m;
  }
}

/** Parse the header text (between the length field and the data). `fail` builds the error. */
export function parseNpyHeader(text: string, name: string): NpyHeader {
  const fail = (what: string) => inputError(`${name} is not a readable .npy file: header ${what}`);
  const dict = new LiteralParser(text, fail).top();
  const keys = [...dict.keys()].sort();
  if (keys.join() !== 'descr,fortran_order,shape') {
    throw fail(
      `must have exactly the keys 'descr', 'fortran_order', 'shape'; found ${keys.map((k) => `'${k}'`).join(', ') || 'none'}`,
    );
  }
  const descr = dict.get('descr');
  if (typeof descr !== 'string')
    throw fail("'descr' must be a dtype string such as '<f4' (structured dtypes are not supported)");
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw fail("'fortran_order' must be True or False");
  const shape = dict.get('shape');
  if (!shape || typeof shape !== 'object' || !('tuple' in shape)) throw fail("'shape' must be a tuple of integers");
  const dims = shape.tuple;
  if (dims.some((d) => typeof d !== 'number' || d < 0)) throw fail("'shape' must be a tuple of non-negative integers");
  return { descr, fortranOrder: fortran, shape: dims as number[] };
}
