/**
 * Parser of a rule's statements: matches (`ip daddr 10.0.0.0/8`, `ip saddr
 * != { … }`, `ip saddr @set`), verdict maps (`… vmap @map`, `numgen random mod
 * 2 vmap { 0 : goto a, 1 : goto b }`), verdicts, NAT, `mark set`, `update
 * @set { ip saddr }`, and statements without effect on a trace (counter, log,
 * comment). Expressions the tracer does not model become `unknown` statements.
 */
import type { Cursor } from './tokenize.js';
import type { Expr, MapRef, NftElement, Rhs, Stmt } from './ruleset.js';
import { describeNext, expectName, fail, NftSyntaxError, parseElements, parseVerdict, sourceText } from './elements.js';
import { parseExpr, parseValueExpr, typesOf } from './expressions.js';
import { compileLiteral, compileMaskedFlags, compileOrdering, type ValueType } from './values.js';
import { parseIp } from '../iptables/values.js';

/** Words that start a statement: where parsing resumes after an unknown expression. */
const STATEMENT_STARTS = new Set([
  'counter', 'comment', 'accept', 'drop', 'continue', 'return', 'reject', 'jump', 'goto', 'queue', 'log', 'limit',
  'notrack', 'dnat', 'snat', 'masquerade', 'redirect', 'update', 'ip', 'ip6', 'th', 'tcp', 'udp', 'sctp', 'meta',
  'mark', 'ct', 'fib', 'numgen', 'iifname', 'oifname', 'iif', 'oif', 'xt', 'flow', 'quota',
]);

const OPS: Readonly<Record<string, string>> = {
  '==': '==', eq: '==', '!=': '!=', ne: '!=', '<': '<', lt: '<', '>': '>', gt: '>', '<=': '<=', le: '<=', '>=': '>=', ge: '>=',
};

export interface ParsedRule {
  stmts: Stmt[];
  comment?: string;
}

function withLine<T>(cur: Cursor, f: () => T): T {
  const line = cur.line();
  try {
    return f();
  } catch (err) {
    if (err instanceof NftSyntaxError) throw err;
    throw new NftSyntaxError(line, (err as Error).message);
  }
}

/** `a . b` literals, `a, b` alternatives, `flags / mask`: the right side of a match without braces. */
function parseLiterals(cur: Cursor, types: ValueType[]): Rhs {
  const from = cur.pos;
  const alternatives: string[][] = [];
  for (;;) {
    const parts = [expectName(cur, 'a value')];
    while (cur.word() === '.') {
      cur.next();
      parts.push(expectName(cur, 'a value after "."'));
    }
    alternatives.push(parts);
    if (!cur.isPunct(',')) break;
    cur.next();
  }
  if (cur.word() === '/' && types[0] === 'tcp_flag') {
    cur.next();
    const mask = [expectName(cur, 'a flag mask')];
    while (cur.isPunct(',')) {
      cur.next();
      mask.push(expectName(cur, 'a flag'));
    }
    const want = alternatives.map((a) => a[0] ?? '');
    const matcher = withLine(cur, () => compileMaskedFlags('tcp_flag', want, mask));
    return { k: 'matcher', matcher, text: sourceText(cur, from) };
  }
  const elements: NftElement[] = alternatives.map((parts) => {
    if (parts.length !== types.length && !(types.length === 1 && types[0] === 'unknown')) {
      fail(cur, `value "${parts.join(' . ')}" has ${parts.length} component(s), the expression has ${types.length}`);
    }
    const key = withLine(cur, () => parts.map((p, i) => compileLiteral(types[i] ?? 'unknown', p)));
    return { key, keyText: parts.join(' . ') };
  });
  return { k: 'elements', elements, text: sourceText(cur, from) };
}

function parseSetName(cur: Cursor): string {
  const w = cur.word();
  if (w === undefined || !w.startsWith('@')) fail(cur, `expected @set${describeNext(cur)}`);
  cur.next();
  if (w.length > 1) return w.slice(1);
  return expectName(cur, 'a set name after "@"');
}

/** After an expression: `vmap …`, `set …`, `@set`, `OP value`, `{ … }` or a literal. */
function parseAfterExpr(cur: Cursor, lhs: Expr, from: number): Stmt {
  const types = typesOf(lhs);
  const w = cur.word();
  if (w === 'vmap') {
    cur.next();
    if (cur.isPunct('{')) {
      const elements = parseElements(cur, types, 'verdict');
      return { k: 'vmap', lhs, map: { k: 'inline', elements }, text: sourceText(cur, from) };
    }
    const name = parseSetName(cur);
    return { k: 'vmap', lhs, map: { k: 'set', name }, text: sourceText(cur, from) };
  }
  if (w === 'set') {
    cur.next();
    const value = parseValueExpr(cur);
    const text = sourceText(cur, from);
    if (lhs.k === 'field' && (lhs.field === 'mark' || lhs.field === 'ctmark')) {
      return { k: 'set-meta', target: lhs.field === 'mark' ? 'mark' : 'ctmark', value, text };
    }
    return { k: 'noop', text, note: `"${text}" is not modelled (no effect on the trace)`, action: text };
  }
  if (w === 'map') {
    cur.next();
    if (cur.isPunct('{')) parseElements(cur, types, 'data');
    else parseSetName(cur);
    return { k: 'unknown', text: sourceText(cur, from) };
  }
  let op = '==';
  if (w !== undefined && OPS[w] !== undefined) {
    op = OPS[w] ?? '==';
    cur.next();
  }
  let rhs: Rhs;
  if (cur.isPunct('{')) {
    if (op !== '==' && op !== '!=') fail(cur, `operator ${op} cannot be used with a set`);
    const rhsFrom = cur.pos;
    const elements = parseElements(cur, types, 'none');
    rhs = { k: 'elements', elements, text: sourceText(cur, rhsFrom) };
  } else if (cur.word()?.startsWith('@') === true) {
    if (op !== '==' && op !== '!=') fail(cur, `operator ${op} cannot be used with a set`);
    const rhsFrom = cur.pos;
    const name = parseSetName(cur);
    rhs = { k: 'set', name, text: sourceText(cur, rhsFrom) };
  } else if (op === '==' || op === '!=') {
    if (cur.peek() === undefined) fail(cur, `expected a value after "${lhs.text}"`);
    rhs = parseLiterals(cur, types);
  } else {
    const rhsFrom = cur.pos;
    const text = expectName(cur, `a value after ${op}`);
    const matcher = withLine(cur, () => compileOrdering(types[0] ?? 'integer', op as '<' | '>' | '<=' | '>=', text));
    rhs = { k: 'matcher', matcher, text: sourceText(cur, rhsFrom) };
  }
  return { k: 'match', lhs, op: op === '!=' ? '!=' : '==', rhs, text: sourceText(cur, from) };
}

/** NAT flags (`fully-random`, `persistent`, …), which do not change where the packet goes. */
function skipNatFlags(cur: Cursor): void {
  while (['random', 'fully-random', 'persistent'].includes(cur.word() ?? '')) {
    cur.next();
    while (cur.isPunct(',')) {
      cur.next();
      cur.next();
    }
  }
}

/**
 * `KEY map @m` / `KEY map { … }` after `dnat|snat [ip|ip6] to`, or null (cursor unchanged) when the
 * target is not a map lookup (`to 10.0.0.1:80`).
 */
function parseNatMap(cur: Cursor, kind: 'dnat' | 'snat', from: number): Stmt | null {
  const at = cur.pos;
  const key = parseExpr(cur);
  if (key === null || cur.word() !== 'map') {
    cur.pos = at;
    return null;
  }
  cur.next();
  const map: MapRef = cur.isPunct('{') ? { k: 'inline', elements: parseElements(cur, typesOf(key), 'data') } : { k: 'set', name: parseSetName(cur) };
  skipNatFlags(cur);
  return { k: 'nat-map', nat: kind, key, map, text: sourceText(cur, from) };
}

/** `[ip|ip6] to ADDR[:PORT]` or `[ip|ip6] to KEY map @m` after dnat/snat; `to :PORT` after redirect/masquerade. */
function parseNat(cur: Cursor, kind: 'dnat' | 'snat' | 'masquerade' | 'redirect', from: number): Stmt {
  let address: string | undefined;
  let port: number | undefined;
  if (cur.word() === 'ip' || cur.word() === 'ip6') cur.next();
  // nft before 1.0 wrote a map's address . port data as `dnat ip addr . port to …`.
  if (cur.word() === 'addr' && cur.word(1) === '.' && cur.word(2) === 'port') cur.pos += 3;
  if (cur.word() === 'to') {
    cur.next();
    const mapped = kind === 'dnat' || kind === 'snat' ? parseNatMap(cur, kind, from) : null;
    if (mapped !== null) return mapped;
    const target = expectName(cur, `an address after ${kind} to`);
    if (cur.word() === 'map' || cur.word() === '.' || /^[a-z]/i.test(target) && !target.includes(':')) {
      while (cur.peek() !== undefined && !STATEMENT_STARTS.has(cur.word() ?? '')) {
        if (cur.isPunct('{')) parseElements(cur, ['unknown'], 'data');
        else cur.next();
      }
      return { k: 'unknown', text: sourceText(cur, from) };
    }
    const m = /^(?:\[([^\]]+)\]|([^:]*(?::[^:]*){2,})|([^:]*))(?::(\d+)(?:-\d+)?)?$/.exec(target);
    const addr = m?.[1] ?? m?.[2] ?? m?.[3] ?? '';
    if (m === null || (addr === '' && m[4] === undefined)) fail(cur, `invalid ${kind} target "${target}"`);
    if (addr !== '') {
      const first = addr.split('-')[0] ?? addr;
      withLine(cur, () => parseIp(first));
      address = first;
    }
    if (m[4] !== undefined) port = Number(m[4]);
    if (port !== undefined && port > 65535) fail(cur, `port out of range in "${target}"`);
  }
  skipNatFlags(cur);
  const stmt: Stmt = { k: 'nat', nat: kind, text: sourceText(cur, from) };
  if (address !== undefined) stmt.address = address;
  if (port !== undefined) stmt.port = port;
  if ((kind === 'dnat' || kind === 'snat') && address === undefined) fail(cur, `${kind} needs "to ADDRESS"`);
  return stmt;
}

function skipUnknown(cur: Cursor, from: number): Stmt {
  cur.next();
  while (cur.peek() !== undefined && !STATEMENT_STARTS.has(cur.word() ?? '')) {
    if (cur.isPunct('{')) {
      let depth = 0;
      do {
        if (cur.isPunct('{')) depth++;
        else if (cur.isPunct('}')) depth--;
        cur.next();
      } while (depth > 0 && cur.peek() !== undefined);
    } else {
      cur.next();
    }
  }
  return { k: 'unknown', text: sourceText(cur, from) };
}

function parseStatement(cur: Cursor, rule: ParsedRule): Stmt | null {
  const from = cur.pos;
  const w = cur.word();
  const tok = cur.peek();
  if (tok === undefined) return null;
  if (tok.kind !== 'word') fail(cur, `unexpected "${tok.text}"`);
  const verdict = parseVerdict(cur);
  if (verdict !== null) return { k: 'verdict', verdict, text: verdict.text };
  switch (w) {
    case 'comment':
      cur.next();
      rule.comment = expectName(cur, 'a comment string');
      return null;
    case 'counter':
      cur.next();
      while (cur.word() === 'packets' || cur.word() === 'bytes' || cur.word() === 'name') {
        cur.next();
        expectName(cur, 'a counter value');
      }
      return { k: 'noop', text: sourceText(cur, from) };
    case 'reject':
      cur.next();
      if (cur.word() === 'with') {
        cur.next();
        const kind = expectName(cur, 'icmp, icmpv6, icmpx or tcp after reject with');
        if (kind === 'tcp') {
          if (cur.word() === 'reset') cur.next();
        } else {
          if (cur.word() === 'type') cur.next();
          expectName(cur, 'a reject code');
        }
      }
      return { k: 'verdict', verdict: { kind: 'reject', text: sourceText(cur, from) }, text: sourceText(cur, from) };
    case 'log': {
      cur.next();
      for (;;) {
        const o = cur.word();
        if (o === 'prefix' || o === 'level' || o === 'group' || o === 'snaplen' || o === 'queue-threshold') {
          cur.next();
          expectName(cur, `a value after log ${o}`);
        } else if (o === 'flags') {
          cur.next();
          expectName(cur, 'log flags');
          while (cur.isPunct(',')) {
            cur.next();
            cur.next();
          }
        } else break;
      }
      const text = sourceText(cur, from);
      return { k: 'noop', text, action: text };
    }
    case 'limit': case 'quota': {
      cur.next();
      const words: string[] = [];
      while (cur.peek() !== undefined && !STATEMENT_STARTS.has(cur.word() ?? '')) words.push(cur.next()?.text ?? '');
      const text = sourceText(cur, from);
      if (words.includes('over')) return { k: 'unknown', text };
      return { k: 'noop', text, note: `${text}: assumed not exceeded` };
    }
    case 'notrack':
      cur.next();
      return { k: 'noop', text: 'notrack', note: 'notrack is not modelled' };
    case 'dnat': case 'snat': case 'masquerade': case 'redirect':
      cur.next();
      return parseNat(cur, w, from);
    case 'update': case 'add': case 'delete': {
      if (cur.word(1)?.startsWith('@') !== true) break;
      cur.next();
      const set = parseSetName(cur);
      if (!cur.isPunct('{')) fail(cur, `expected "{" after ${w} @${set}`);
      cur.next();
      const key = parseExpr(cur);
      if (key === null) fail(cur, `expected an expression in ${w} @${set}`);
      while (cur.word() === 'timeout' || cur.word() === 'expires' || cur.word() === 'counter') {
        const o = cur.next()?.text;
        if (o !== 'counter') cur.next();
      }
      if (!cur.isPunct('}')) fail(cur, `expected "}"${describeNext(cur)}`);
      cur.next();
      return { k: 'set-update', op: w, set, key, text: sourceText(cur, from) };
    }
    case 'xt':
      cur.next();
      cur.next();
      if (cur.peek()?.kind === 'string' || cur.word() !== undefined) cur.next();
      return { k: 'unknown', text: sourceText(cur, from) };
    case 'flow':
      cur.next();
      while (cur.peek() !== undefined && !STATEMENT_STARTS.has(cur.word() ?? '')) cur.next();
      return { k: 'noop', text: sourceText(cur, from), note: 'flow offload is not modelled' };
    default:
      break;
  }
  const lhs = parseExpr(cur);
  if (lhs === null) return skipUnknown(cur, from);
  return parseAfterExpr(cur, lhs, from);
}

/** Parses the statements of one rule; `cur` holds only the rule's tokens. */
export function parseRuleStatements(cur: Cursor): ParsedRule {
  const rule: ParsedRule = { stmts: [] };
  while (!cur.atEnd()) {
    const s = parseStatement(cur, rule);
    if (s !== null) rule.stmts.push(s);
  }
  if (rule.stmts.length === 0 && rule.comment === undefined) fail(cur, 'empty rule');
  return rule;
}
