/**
 * Typed values of nftables expressions and the literals they are compared
 * with. Literals are compiled once, at parse time, into matchers that know
 * their datatype, so a typo is a parse error with a line number rather than a
 * silent mismatch at trace time.
 */
import { cidrContains, parseCidr, parseIp, type IpAddress } from '../iptables/values.js';

/** nft datatypes (as in `type ipv4_addr . inet_proto . inet_service`) that the tracer distinguishes. */
export type ValueType =
  | 'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service' | 'mark' | 'integer'
  | 'ct_state' | 'ct_status' | 'ct_dir' | 'fib_addrtype' | 'ifname' | 'nf_proto' | 'tcp_flag'
  | 'verdict' | 'unknown';

/** A value an expression evaluates to for the traced packet. */
export type Val =
  | { t: 'addr'; a: IpAddress }
  | { t: 'num'; n: number }
  | { t: 'sym'; s: string }
  | { t: 'flags'; f: readonly string[] };

export interface Matcher {
  /** The literal as written. */
  text: string;
  test(v: Val): boolean;
}

const SET_TYPES: Readonly<Record<string, ValueType>> = {
  ipv4_addr: 'ipv4_addr', ipv6_addr: 'ipv6_addr', inet_proto: 'inet_proto', inet_service: 'inet_service',
  mark: 'mark', integer: 'integer', ct_state: 'ct_state', ct_status: 'ct_status', ct_dir: 'ct_dir',
  fib_addrtype: 'fib_addrtype', ifname: 'ifname', nf_proto: 'nf_proto', tcp_flag: 'tcp_flag', verdict: 'verdict',
};

/** The ValueType of a datatype name in a set declaration (`unknown` for the ones not modelled). */
export function datatypeFromName(name: string): ValueType {
  return SET_TYPES[name] ?? 'unknown';
}

export const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, udp: 17, dccp: 33, gre: 47, esp: 50, ah: 51, icmpv6: 58, 'ipv6-icmp': 58,
  sctp: 132, udplite: 136, comp: 108,
};

const SERVICES: Readonly<Record<string, number>> = {
  ssh: 22, domain: 53, http: 80, https: 443, 'http-alt': 8080, ntp: 123, bgp: 179, kerberos: 88,
};

function parseNumber(text: string, whole: string): number {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^\d+$/.test(text)) n = Number(text);
  else throw new Error(`invalid number "${whole}"`);
  if (n > 0xffffffff) throw new Error(`number out of 32-bit range "${whole}"`);
  return n;
}

function numberOf(type: ValueType, text: string, whole: string): number {
  if (type === 'inet_proto') {
    const p = PROTOCOLS[text];
    if (p !== undefined) return p;
    const n = parseNumber(text, whole);
    if (n > 255) throw new Error(`protocol out of range "${whole}"`);
    return n;
  }
  if (type === 'inet_service') {
    const s = SERVICES[text];
    if (s !== undefined) return s;
    const n = parseNumber(text, whole);
    if (n > 65535) throw new Error(`port out of range "${whole}"`);
    return n;
  }
  return parseNumber(text, whole);
}

/** The port a NAT target names (`8080`, `http`, or the first port of `8080-8090`). */
export function natPort(text: string): number {
  const dash = text.indexOf('-', 1);
  return numberOf('inet_service', dash > 0 ? text.slice(0, dash) : text, text);
}

function compareBytes(a: IpAddress, b: IpAddress): number {
  const x = a.toByteArray();
  const y = b.toByteArray();
  for (let i = 0; i < x.length; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function addressMatcher(type: ValueType, text: string): Matcher {
  const family = type === 'ipv6_addr' ? 'ipv6' : type === 'ipv4_addr' ? 'ipv4' : null;
  const check = (a: IpAddress): IpAddress => {
    if (family !== null && a.kind() !== family) throw new Error(`"${text}" is not an ${type === 'ipv6_addr' ? 'IPv6' : 'IPv4'} address`);
    return a;
  };
  // An IPv6 address has colons but never a dash, so a dash means a range.
  const dash = text.indexOf('-');
  if (dash > 0) {
    const from = check(parseIp(text.slice(0, dash)));
    const to = check(parseIp(text.slice(dash + 1)));
    if (from.kind() !== to.kind() || compareBytes(from, to) > 0) throw new Error(`invalid address range "${text}"`);
    return {
      text,
      test: (v) => v.t === 'addr' && v.a.kind() === from.kind() && compareBytes(v.a, from) >= 0 && compareBytes(v.a, to) <= 0,
    };
  }
  const cidr = parseCidr(text);
  check(cidr.address);
  return { text, test: (v) => v.t === 'addr' && cidrContains(cidr, v.a) };
}

function numberMatcher(type: ValueType, text: string): Matcher {
  const dash = text.indexOf('-', 1);
  if (dash > 0) {
    const from = numberOf(type, text.slice(0, dash), text);
    const to = numberOf(type, text.slice(dash + 1), text);
    if (from > to) throw new Error(`invalid range "${text}" (start is after end)`);
    return { text, test: (v) => v.t === 'num' && v.n >= from && v.n <= to };
  }
  const n = numberOf(type, text, text);
  return { text, test: (v) => v.t === 'num' && v.n === n };
}

function symbolMatcher(text: string, wildcard: boolean): Matcher {
  if (wildcard && text.endsWith('*')) {
    const prefix = text.slice(0, -1);
    return { text, test: (v) => v.t === 'sym' && v.s.startsWith(prefix) };
  }
  return { text, test: (v) => (v.t === 'sym' && v.s === text) || (v.t === 'flags' && v.f.includes(text)) };
}

const CT_STATES = new Set(['new', 'established', 'related', 'invalid', 'untracked']);
const CT_STATUS = new Set(['expected', 'seen-reply', 'assured', 'confirmed', 'snat', 'dnat', 'dying']);
const TCP_FLAGS = new Set(['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ecn', 'cwr']);
const FIB_TYPES = new Set([
  'unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit',
  'throw', 'nat', 'xresolve',
]);

/** Guesses the type of a literal whose context gives none (sets of unknown type). */
function guessType(text: string): ValueType {
  const base = text.split('/')[0]?.split('-')[0] ?? text;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(base)) return 'ipv4_addr';
  if (base.includes(':')) return 'ipv6_addr';
  if (/^(0x[0-9a-f]+|\d+)$/i.test(base)) return 'integer';
  return 'unknown';
}

/** Compiles a literal of `type`; throws an Error with a short message when it is not valid for the type. */
export function compileLiteral(type: ValueType, text: string): Matcher {
  switch (type) {
    case 'ipv4_addr':
    case 'ipv6_addr':
      return addressMatcher(type, text);
    case 'inet_proto':
    case 'inet_service':
    case 'mark':
    case 'integer':
      return numberMatcher(type, text);
    case 'ct_state':
      if (!CT_STATES.has(text)) throw new Error(`unknown ct state "${text}"`);
      return symbolMatcher(text, false);
    case 'ct_status':
      if (!CT_STATUS.has(text)) throw new Error(`unknown ct status "${text}"`);
      return symbolMatcher(text, false);
    case 'tcp_flag':
      if (!TCP_FLAGS.has(text)) throw new Error(`unknown tcp flag "${text}"`);
      return symbolMatcher(text, false);
    case 'fib_addrtype':
      if (!FIB_TYPES.has(text)) throw new Error(`unknown fib address type "${text}"`);
      return symbolMatcher(text, false);
    case 'ifname':
      return symbolMatcher(text, true);
    case 'ct_dir':
    case 'nf_proto':
      return symbolMatcher(text, false);
    case 'verdict':
      throw new Error(`a verdict "${text}" cannot be a key`);
    case 'unknown': {
      const guessed = guessType(text);
      return guessed === 'unknown' ? symbolMatcher(text, false) : compileLiteral(guessed, text);
    }
  }
}

/** `<`, `>`, `<=`, `>=` against a number. */
export function compileOrdering(type: ValueType, op: '<' | '>' | '<=' | '>=', text: string): Matcher {
  const n = numberOf(type, text, text);
  const cmp = {
    '<': (x: number) => x < n, '>': (x: number) => x > n, '<=': (x: number) => x <= n, '>=': (x: number) => x >= n,
  }[op];
  return { text: `${op} ${text}`, test: (v) => v.t === 'num' && cmp(v.n) };
}

/** `flags / mask` (e.g. `tcp flags syn / syn,ack`): the flags under the mask are exactly `flags`. */
export function compileMaskedFlags(type: ValueType, want: string[], mask: string[]): Matcher {
  for (const f of [...want, ...mask]) compileLiteral(type, f);
  const text = `${want.join(',')} / ${mask.join(',')}`;
  return {
    text,
    test: (v) => {
      if (v.t !== 'flags') return false;
      const under = v.f.filter((f) => mask.includes(f));
      return under.length === want.length && want.every((f) => under.includes(f));
    },
  };
}

export function formatVal(v: Val): string {
  switch (v.t) {
    case 'addr': return v.a.toString();
    case 'num': return String(v.n);
    case 'sym': return v.s;
    case 'flags': return v.f.join(',');
  }
}

/** Formats a value of `type` the way nft prints it (protocol names, hex marks). */
export function formatTyped(type: ValueType, v: Val): string {
  if (v.t === 'num' && type === 'inet_proto') {
    const name = Object.entries(PROTOCOLS).find(([, n]) => n === v.n)?.[0];
    return name ?? String(v.n);
  }
  if (v.t === 'num' && type === 'mark') return `0x${(v.n >>> 0).toString(16)}`;
  return formatVal(v);
}
