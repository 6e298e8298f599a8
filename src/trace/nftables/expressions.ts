/**
 * Parsing of nft expressions: packet, conntrack and routing selectors
 * (`ip daddr`, `meta l4proto`, `th dport`, `ct state`, `fib daddr type`,
 * `numgen random mod N`, …), bit operations on them (`meta mark & 0x4000`)
 * and concatenations (`ip daddr . meta l4proto . th dport`).
 */
import type { Cursor } from './tokenize.js';
import type { BinOp, Expr } from './ruleset.js';
import { fail, sourceText } from './elements.js';
import { PROTOCOLS, type ValueType } from './values.js';

type FieldExpr = Extract<Expr, { k: 'field' }>;

function field(cur: Cursor, from: number, name: string, type: ValueType, extra: Partial<FieldExpr> = {}): FieldExpr {
  return { k: 'field', field: name, type, text: sourceText(cur, from), ...extra };
}

const TRANSPORT = new Set(['tcp', 'udp', 'sctp', 'udplite', 'dccp']);
const OTHER_L4 = new Set(['icmp', 'icmpv6', 'igmp']);
/** Selectors the tracer does not model: a keyword and one field word. */
const UNMODELLED = new Set([
  'rt', 'socket', 'osf', 'ipsec', 'ether', 'vlan', 'arp', 'ah', 'esp', 'comp', 'dst', 'hbh', 'frag', 'rt0', 'rt2',
  'srh', 'mh', 'exthdr', 'tunnel', 'gre', 'vxlan', 'geneve', 'cgroupv2', 'dccp',
]);
const BARE_META = new Set([
  'mark', 'iif', 'iifname', 'iiftype', 'oif', 'oifname', 'oiftype', 'skuid', 'skgid', 'pkttype', 'cpu',
  'iifgroup', 'oifgroup', 'cgroup', 'nftrace', 'priority', 'rtclassid', 'ibrname', 'obrname',
]);

function metaField(cur: Cursor, from: number, key: string): FieldExpr {
  switch (key) {
    case 'l4proto': return field(cur, from, 'l4proto', 'inet_proto');
    case 'mark': return field(cur, from, 'mark', 'mark');
    case 'nfproto': return field(cur, from, 'nfproto', 'nf_proto');
    case 'protocol': return field(cur, from, 'ethertype', 'nf_proto');
    case 'iifname': case 'iif': return field(cur, from, 'iifname', 'ifname');
    case 'oifname': case 'oif': return field(cur, from, 'oifname', 'ifname');
    default: return field(cur, from, `meta ${key}`, 'unknown');
  }
}

function ctField(cur: Cursor, from: number): FieldExpr {
  let dir: string | undefined;
  if (cur.word() === 'original' || cur.word() === 'reply') dir = cur.next()?.text;
  let key = cur.word();
  if (key === undefined) fail(cur, 'expected a ct key');
  cur.next();
  let family: 'ipv4' | 'ipv6' | undefined;
  if ((key === 'ip' || key === 'ip6') && (cur.word() === 'saddr' || cur.word() === 'daddr')) {
    family = key === 'ip' ? 'ipv4' : 'ipv6';
    key = cur.next()?.text ?? '';
  }
  const fam = family === undefined ? {} : { family };
  if (dir === undefined) {
    switch (key) {
      case 'state': return field(cur, from, 'ct state', 'ct_state');
      case 'status': return field(cur, from, 'ct status', 'ct_status');
      case 'mark': return field(cur, from, 'ctmark', 'mark');
      case 'direction': return field(cur, from, 'ct direction', 'ct_dir');
      case 'l3proto': return field(cur, from, 'nfproto', 'nf_proto');
      case 'protocol': return field(cur, from, 'l4proto', 'inet_proto');
      default: return field(cur, from, `ct ${key}`, 'unknown');
    }
  }
  if (dir === 'original') {
    const addrType: ValueType = family === 'ipv6' ? 'ipv6_addr' : family === 'ipv4' ? 'ipv4_addr' : 'unknown';
    switch (key) {
      case 'saddr': return field(cur, from, 'ct original saddr', addrType, fam);
      case 'daddr': return field(cur, from, 'ct original daddr', addrType, fam);
      case 'proto-dst': return field(cur, from, 'ct original proto-dst', 'inet_service');
      case 'proto-src': return field(cur, from, 'sport', 'inet_service');
      case 'protocol': return field(cur, from, 'l4proto', 'inet_proto');
      case 'l3proto': return field(cur, from, 'nfproto', 'nf_proto');
      default: return field(cur, from, `ct original ${key}`, 'unknown');
    }
  }
  return field(cur, from, `ct reply ${key}`, 'unknown', fam);
}

const FIB_FLAGS = new Set(['saddr', 'daddr', 'mark', 'iif', 'oif']);

function fibField(cur: Cursor, from: number): FieldExpr {
  const flags: string[] = [];
  for (;;) {
    const f = cur.word();
    if (f === undefined || !FIB_FLAGS.has(f)) fail(cur, 'expected saddr, daddr, mark, iif or oif after fib');
    flags.push(f);
    cur.next();
    if (cur.word() !== '.') break;
    cur.next();
  }
  const result = cur.word();
  if (result !== 'type' && result !== 'oif' && result !== 'oifname' && result !== 'check') fail(cur, 'expected type, oif or oifname in fib expression');
  cur.next();
  const addr = flags.filter((f) => f === 'saddr' || f === 'daddr');
  if (result === 'type' && addr.length === 1 && !flags.includes('mark')) {
    return field(cur, from, `fib ${addr[0] ?? ''} type`, 'fib_addrtype');
  }
  return field(cur, from, `fib ${flags.join(' . ')} ${result}`, 'unknown');
}

function parseCount(cur: Cursor, what: string): number {
  const w = cur.word();
  if (w === undefined || !/^\d+$/.test(w)) fail(cur, `expected a number after ${what}`);
  cur.next();
  return Number(w);
}

/** Parses a selector at the cursor, or returns null (cursor unchanged) if the next tokens are not one. */
export function parseSelector(cur: Cursor): Expr | null {
  const from = cur.pos;
  const w = cur.word();
  if (w === undefined) return null;
  const f1 = cur.word(1);
  if (w === 'ip' || w === 'ip6') {
    const family = w === 'ip' ? 'ipv4' : 'ipv6';
    if (f1 === undefined || f1 === 'to' || f1 === '.' || f1 === ':') return null;
    cur.pos += 2;
    if (f1 === 'saddr' || f1 === 'daddr') return field(cur, from, f1, w === 'ip' ? 'ipv4_addr' : 'ipv6_addr', { family });
    if ((w === 'ip' && f1 === 'protocol') || (w === 'ip6' && f1 === 'nexthdr')) return field(cur, from, 'l4proto', 'inet_proto', { family });
    return field(cur, from, `${w} ${f1}`, 'unknown', { family });
  }
  if (w === 'th' && (f1 === 'sport' || f1 === 'dport')) {
    cur.pos += 2;
    return field(cur, from, f1, 'inet_service');
  }
  if (TRANSPORT.has(w) && f1 !== undefined && f1 !== '.' && !/^[\d{@]/.test(f1) && cur.peek(1)?.kind === 'word') {
    const proto = PROTOCOLS[w];
    cur.pos += 2;
    if (f1 === 'sport' || f1 === 'dport') return field(cur, from, f1, 'inet_service', proto === undefined ? {} : { proto });
    if (w === 'tcp' && f1 === 'flags') return field(cur, from, 'tcp flags', 'tcp_flag', { proto: 6 });
    if (w === 'tcp' && f1 === 'option') {
      cur.pos += 2; // tcp option NAME FIELD
      return field(cur, from, 'tcp option', 'unknown', { proto: 6 });
    }
    return field(cur, from, `${w} ${f1}`, 'unknown', proto === undefined ? {} : { proto });
  }
  if (OTHER_L4.has(w) && f1 !== undefined && cur.peek(1)?.kind === 'word') {
    cur.pos += 2;
    return field(cur, from, `${w} ${f1}`, 'unknown', { proto: PROTOCOLS[w] ?? 0 });
  }
  if (w === 'meta' && f1 !== undefined) {
    cur.pos += 2;
    return metaField(cur, from, f1);
  }
  if (BARE_META.has(w)) {
    cur.pos += 1;
    return metaField(cur, from, w);
  }
  if (w === 'ct') {
    cur.next();
    return ctField(cur, from);
  }
  if (w === 'fib') {
    cur.next();
    return fibField(cur, from);
  }
  if (w === 'numgen') {
    cur.next();
    const mode = cur.word();
    if (mode !== 'random' && mode !== 'inc') fail(cur, 'expected random or inc after numgen');
    cur.next();
    if (cur.word() !== 'mod') fail(cur, 'expected mod in numgen expression');
    cur.next();
    const mod = parseCount(cur, 'mod');
    if (mod < 1) fail(cur, 'numgen mod must be at least 1');
    let offset = 0;
    if (cur.word() === 'offset') {
      cur.next();
      offset = parseCount(cur, 'offset');
    }
    return { k: 'numgen', mode, mod, offset, text: sourceText(cur, from) };
  }
  if (w === 'jhash' || w === 'symhash') {
    cur.next();
    if (w === 'jhash') parseExpr(cur);
    if (cur.word() !== 'mod') fail(cur, `expected mod in ${w} expression`);
    cur.next();
    parseCount(cur, 'mod');
    while (cur.word() === 'seed' || cur.word() === 'offset') {
      cur.next();
      cur.next();
    }
    return { k: 'unknown', text: sourceText(cur, from), type: 'integer' };
  }
  if (UNMODELLED.has(w) && f1 !== undefined && cur.peek(1)?.kind === 'word') {
    cur.pos += 2;
    return { k: 'unknown', text: sourceText(cur, from), type: 'unknown' };
  }
  return null;
}

const BINOPS: Readonly<Record<string, BinOp>> = {
  '&': '&', and: '&', '|': '|', or: '|', '^': '^', xor: '^', '<<': '<<', lshift: '<<', '>>': '>>', rshift: '>>',
};

function parseNumberWord(cur: Cursor): number {
  const w = cur.word();
  if (w === undefined || !/^(0x[0-9a-f]+|\d+)$/i.test(w)) fail(cur, `expected a number${w === undefined ? '' : `, got "${w}"`}`);
  cur.next();
  const n = w.toLowerCase().startsWith('0x') ? parseInt(w.slice(2), 16) : Number(w);
  if (n > 0xffffffff) fail(cur, `number out of 32-bit range "${w}"`);
  return n;
}

/** A selector (or, when `allowConst`, a number) followed by bit operations. */
function parsePrimary(cur: Cursor, allowConst: boolean): Expr | null {
  const from = cur.pos;
  let e: Expr | null = parseSelector(cur);
  if (e === null) {
    if (!allowConst || cur.word() === undefined || !/^(0x[0-9a-f]+|\d+)$/i.test(cur.word() ?? '')) return null;
    const n = parseNumberWord(cur);
    e = { k: 'const', n, text: sourceText(cur, from) };
  }
  for (;;) {
    const op = BINOPS[cur.word() ?? ''];
    if (op === undefined) return e;
    cur.next();
    const right = parseNumberWord(cur);
    e = { k: 'binop', op, left: e, right, type: typesOf(e)[0] ?? 'integer', text: sourceText(cur, from) };
  }
}

/** Parses `primary ( . primary )*`, or returns null (cursor unchanged) when no selector starts here. */
export function parseExpr(cur: Cursor): Expr | null {
  const from = cur.pos;
  const first = parsePrimary(cur, false);
  if (first === null) return null;
  if (cur.word() !== '.') return first;
  const parts = [first];
  while (cur.word() === '.') {
    cur.next();
    const next = parsePrimary(cur, false);
    if (next === null) fail(cur, 'expected an expression after "."');
    parts.push(next);
  }
  return { k: 'concat', parts, text: sourceText(cur, from) };
}

/** The value of `mark set …`: a selector or a number, with bit operations. */
export function parseValueExpr(cur: Cursor): Expr {
  const e = parsePrimary(cur, true);
  if (e === null) fail(cur, 'expected a value');
  return e;
}

/** The datatypes of an expression's value (one per component of a concatenation). */
export function typesOf(e: Expr): ValueType[] {
  switch (e.k) {
    case 'field': case 'binop': case 'unknown': return [e.type];
    case 'concat': return e.parts.flatMap(typesOf);
    case 'numgen': case 'const': return ['integer'];
  }
}

/** The numgen expressions of an expression, in evaluation order. */
export function numgensOf(e: Expr): Extract<Expr, { k: 'numgen' }>[] {
  switch (e.k) {
    case 'numgen': return [e];
    case 'binop': return numgensOf(e.left);
    case 'concat': return e.parts.flatMap(numgensOf);
    default: return [];
  }
}
