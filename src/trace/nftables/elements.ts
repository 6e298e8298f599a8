/**
 * Parsing of `{ … }` element lists (set and map elements, inline sets and
 * verdict maps) and of verdicts, shared by the rule and the set parsers.
 */
import type { Cursor, Token } from './tokenize.js';
import type { NftElement, VerdictSpec } from './ruleset.js';
import { compileLiteral, type ValueType } from './values.js';

export class NftSyntaxError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

export function fail(cur: Cursor, message: string): never {
  throw new NftSyntaxError(cur.line(), message);
}

/** Text of the source between token `from` (inclusive) and the cursor (exclusive). */
export function sourceText(cur: Cursor, from: number): string {
  const first = cur.tokens[from];
  const last = cur.tokens[cur.pos - 1];
  if (first === undefined || last === undefined || cur.pos <= from) return '';
  return cur.source.slice(first.start, last.end);
}

/** A word or a string (names may be quoted). */
export function expectName(cur: Cursor, what: string): string {
  const t = cur.peek();
  if (t === undefined || (t.kind !== 'word' && t.kind !== 'string')) fail(cur, `expected ${what}`);
  cur.next();
  return t.text;
}

export function expectPunct(cur: Cursor, p: string): void {
  if (!cur.isPunct(p)) fail(cur, `expected "${p}"${describeNext(cur)}`);
  cur.next();
}

export function describeNext(cur: Cursor): string {
  const t: Token | undefined = cur.peek();
  if (t === undefined) return ' at end of input';
  if (t.kind === 'newline') return ' at end of line';
  return ` before "${t.text}"`;
}

const SIMPLE_VERDICTS = new Set(['accept', 'drop', 'return', 'continue']);

/** Parses a verdict at the cursor (`accept`, `goto CHAIN`, …), or returns null if there is none. */
export function parseVerdict(cur: Cursor): VerdictSpec | null {
  const w = cur.word();
  if (w === undefined) return null;
  const from = cur.pos;
  if (SIMPLE_VERDICTS.has(w)) {
    cur.next();
    return { kind: w as VerdictSpec['kind'], text: w };
  }
  if (w === 'jump' || w === 'goto') {
    cur.next();
    const chain = expectName(cur, `a chain name after ${w}`);
    return { kind: w, chain, text: sourceText(cur, from) };
  }
  if (w === 'queue') {
    cur.next();
    while (cur.word() !== undefined && ['num', 'to', 'bypass', 'fanout', 'flags'].includes(cur.word() ?? '')) {
      const opt = cur.next()?.text;
      if ((opt === 'num' || opt === 'to' || opt === 'flags') && cur.word() !== undefined) cur.next();
      while (cur.isPunct(',')) {
        cur.next();
        cur.next();
      }
    }
    return { kind: 'queue', text: sourceText(cur, from) };
  }
  return null;
}

/** One key: `a . b . c` (words or strings). */
function parseKeyParts(cur: Cursor): string[] {
  const parts = [expectName(cur, 'an element key')];
  while (cur.word() === '.') {
    cur.next();
    parts.push(expectName(cur, 'a key component after "."'));
  }
  return parts;
}

/** Checks a map element's data against the map's data types (a typo in a DNAT target is a parse error, as for keys). */
function checkData(parts: string[], dataTypes: readonly ValueType[], line: number): void {
  if (dataTypes.length === 0) return;
  if (parts.length !== dataTypes.length) {
    throw new NftSyntaxError(line, `data "${parts.join(' . ')}" has ${parts.length} component(s), the map's data type has ${dataTypes.length}`);
  }
  try {
    // Datatypes the tracer does not model (ether_addr, …) are not checked: guessing would refuse valid data.
    parts.forEach((p, i) => {
      const type = dataTypes[i] ?? 'unknown';
      if (type !== 'unknown') compileLiteral(type, p);
    });
  } catch (err) {
    throw new NftSyntaxError(line, (err as Error).message);
  }
}

const ELEMENT_OPTIONS = new Set(['timeout', 'expires', 'comment', 'counter', 'packets', 'bytes']);

/**
 * Parses `{ elem, elem, … }` (at least one element, a trailing comma allowed) at the cursor. `keyTypes` type the key components; `value` says what
 * follows a `:` (a verdict, data, or nothing for sets); `dataTypes`, when known, type the data's components. Newlines inside the braces are ignored.
 */
export function parseElements(
  cur: Cursor, keyTypes: ValueType[], value: 'verdict' | 'data' | 'none', dataTypes: readonly ValueType[] = [],
): NftElement[] {
  expectPunct(cur, '{');
  const elements: NftElement[] = [];
  for (;;) {
    cur.skipNewlines();
    if (cur.isPunct('}')) {
      // nft's grammar has no empty element list: `{ }` is a syntax error (unexpected '}').
      if (elements.length === 0) fail(cur, 'an empty element list "{ }" (nft refuses it: syntax error, unexpected "}")');
      cur.next();
      return elements;
    }
    const line = cur.line();
    const parts = parseKeyParts(cur);
    if (parts.length !== keyTypes.length && !(keyTypes.length === 1 && keyTypes[0] === 'unknown')) {
      throw new NftSyntaxError(line, `element "${parts.join(' . ')}" has ${parts.length} key component(s), the set's type has ${keyTypes.length}`);
    }
    let key;
    try {
      key = parts.map((p, i) => compileLiteral(keyTypes[i] ?? 'unknown', p));
    } catch (err) {
      throw new NftSyntaxError(line, (err as Error).message);
    }
    const element: NftElement = { key, keyText: parts.join(' . ') };
    for (;;) {
      cur.skipNewlines();
      const opt = cur.word();
      if (opt === undefined || !ELEMENT_OPTIONS.has(opt)) break;
      cur.next();
      if (opt === 'comment') element.comment = expectName(cur, 'a comment string');
      else if (opt !== 'counter') expectName(cur, `a value after ${opt}`);
    }
    cur.skipNewlines();
    if (cur.word() === ':') {
      cur.next();
      cur.skipNewlines();
      if (value === 'none') fail(cur, 'a set element cannot have a value (":"); is this a map?');
      if (value === 'verdict') {
        const v = parseVerdict(cur);
        if (v === null) fail(cur, `expected a verdict${describeNext(cur)}`);
        element.verdict = v;
      } else {
        const dataLine = cur.line();
        const data = parseKeyParts(cur);
        checkData(data, dataTypes, dataLine);
        element.data = data.join(' . ');
        element.dataParts = data;
      }
    } else if (value !== 'none') {
      fail(cur, `map element "${element.keyText}" has no value`);
    }
    elements.push(element);
    cur.skipNewlines();
    if (cur.isPunct(',')) {
      cur.next();
      continue;
    }
    if (!cur.isPunct('}')) fail(cur, `expected "," or "}" in element list${describeNext(cur)}`);
  }
}
