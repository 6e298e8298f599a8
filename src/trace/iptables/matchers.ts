/**
 * Evaluates a rule's matches against the first packet of a new connection.
 *
 * Facts that cannot be known from the packet (interfaces, unknown match
 * modules, a missing source port) are "assumptions": the rule is taken not to
 * match (unless a `!` negation makes the assumed-false value true), and a note
 * says so, so that the trace can show it.
 */
import type { MatchOption, Rule, RuleMatch } from './ruleset.js';
import { PROTOCOL_NUMBERS } from './ruleset.js';
import {
  cidrContains,
  isLocalAddress,
  parseCidr,
  parseCidrList,
  parseIp,
  parseMarkSpec,
  parsePortList,
  parsePortRange,
  parseProbability,
  portInRanges,
  type Cidr,
  type IpAddress,
  type PortRange,
} from './values.js';

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** What the tracer knows about the packet at the current point of its trip. */
export interface PacketState {
  src: IpAddress;
  dst: IpAddress;
  proto: Protocol;
  sport?: number;
  dport: number;
  mark: number;
  /** Destination before DNAT (conntrack original tuple). */
  origDst: IpAddress;
  origDport: number;
  dnat: boolean;
  snat: boolean;
}

export interface MatchContext {
  localAddresses: IpAddress[];
}

export type RuleEvaluation =
  /** notes are set when the decision rests on an assumption. */
  | { matched: false; notes: string[] }
  /** probability < 1 when a `-m statistic --mode random` match is involved. */
  | { matched: true; probability: number; notes: string[] };

/** Result of one option before negation; `assumed` explains a value that cannot be known. */
interface OptionValue {
  value: boolean;
  assumed?: string;
}

const PROTO_NUMBER: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17, sctp: 132 };

const cidrCache = new Map<string, Cidr[]>();
function cidrs(text: string): Cidr[] {
  let v = cidrCache.get(text);
  if (v === undefined) {
    v = parseCidrList(text);
    cidrCache.set(text, v);
  }
  return v;
}

const portCache = new Map<string, PortRange[]>();
function ports(text: string): PortRange[] {
  let v = portCache.get(text);
  if (v === undefined) {
    v = text.includes(',') ? parsePortList(text) : [parsePortRange(text)];
    portCache.set(text, v);
  }
  return v;
}

const known = (value: boolean): OptionValue => ({ value });

function sourcePort(p: PacketState, list: string): OptionValue {
  if (p.sport === undefined) return { value: false, assumed: 'source port not given' };
  return known(portInRanges(p.sport, ports(list)));
}

function addrTypes(address: IpAddress, list: string, ctx: MatchContext): boolean {
  const local = isLocalAddress(address, ctx.localAddresses);
  const multicast = address.range() === 'multicast';
  const broadcast = address.kind() === 'ipv4' && address.toString() === '255.255.255.255';
  return list.split(',').some((t) => {
    switch (t) {
      case 'LOCAL': return local;
      case 'MULTICAST': return multicast;
      case 'BROADCAST': return broadcast;
      case 'UNICAST': return !local && !multicast && !broadcast;
      default: return false;
    }
  });
}

const TCP_FLAGS: Readonly<Record<string, number>> = {
  FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80, ALL: 0xff, NONE: 0,
};
/** The first packet of a TCP connection carries only SYN. */
const FIRST_PACKET_FLAGS = 0x02;

function tcpFlags(list: string): number {
  return list.split(',').reduce((acc, f) => acc | (TCP_FLAGS[f.toUpperCase()] ?? 0), 0);
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

function inRange(address: IpAddress, range: string): boolean {
  const [lo, hi] = range.split('-');
  const from = parseIp(lo ?? '');
  const to = parseIp(hi ?? lo ?? '');
  if (from.kind() !== address.kind()) return false;
  return compareBytes(address, from) >= 0 && compareBytes(address, to) <= 0;
}

function ctState(list: string, p: PacketState): boolean {
  return list.split(',').some((s) => s === 'NEW' || (s === 'DNAT' && p.dnat) || (s === 'SNAT' && p.snat));
}

function unsupported(module: string, o: MatchOption): OptionValue {
  return { value: false, assumed: `option --${o.name} of match ${module} is not supported` };
}

function evalOption(module: string, o: MatchOption, p: PacketState, ctx: MatchContext): OptionValue {
  const v = o.args[0] ?? '';
  switch (module) {
    case 'builtin':
      switch (o.name) {
        case 'source': return known(cidrs(v).some((c) => cidrContains(c, p.src)));
        case 'destination': return known(cidrs(v).some((c) => cidrContains(c, p.dst)));
        case 'protocol': {
          const n = PROTOCOL_NUMBERS[v.toLowerCase()] ?? Number(v);
          return known(n === 0 || n === PROTO_NUMBER[p.proto]);
        }
        case 'in-interface': return { value: false, assumed: `input interface ${v} cannot be known` };
        case 'out-interface': return { value: false, assumed: `output interface ${v} cannot be known` };
        case 'fragment': return known(false);
        default: return unsupported(module, o);
      }
    case 'tcp': case 'udp': case 'sctp':
      switch (o.name) {
        case 'dport': return known(portInRanges(p.dport, ports(v)));
        case 'sport': return sourcePort(p, v);
        case 'syn': return known(true);
        case 'tcp-flags': return known((FIRST_PACKET_FLAGS & tcpFlags(v)) === tcpFlags(o.args[1] ?? ''));
        default: return unsupported(module, o);
      }
    case 'multiport':
      switch (o.name) {
        case 'dports': return known(portInRanges(p.dport, ports(v)));
        case 'sports': return sourcePort(p, v);
        case 'ports': {
          if (portInRanges(p.dport, ports(v))) return known(true);
          return sourcePort(p, v);
        }
        default: return unsupported(module, o);
      }
    case 'addrtype':
      switch (o.name) {
        case 'dst-type': return known(addrTypes(p.dst, v, ctx));
        case 'src-type': return known(addrTypes(p.src, v, ctx));
        case 'limit-iface-in': case 'limit-iface-out': return known(true);
        default: return unsupported(module, o);
      }
    case 'mark':
      if (o.name !== 'mark') return unsupported(module, o);
      return known(((p.mark & parseMarkSpec(v).mask) >>> 0) === parseMarkSpec(v).value);
    case 'state':
      return o.name === 'state' ? known(ctState(v, p)) : unsupported(module, o);
    case 'conntrack':
      switch (o.name) {
        case 'ctstate': return known(ctState(v, p));
        case 'ctproto': {
          const n = PROTOCOL_NUMBERS[v.toLowerCase()] ?? Number(v);
          return known(n === 0 || n === PROTO_NUMBER[p.proto]);
        }
        case 'ctorigsrc': return known(cidrContains(parseCidr(v), p.src));
        case 'ctorigdst': return known(cidrContains(parseCidr(v), p.origDst));
        case 'ctreplsrc': return known(cidrContains(parseCidr(v), p.dst));
        case 'ctrepldst':
          if (p.snat) return { value: false, assumed: 'reply destination after SNAT is not known' };
          return known(cidrContains(parseCidr(v), p.src));
        case 'ctorigsrcport': case 'ctrepldstport': return sourcePort(p, v);
        case 'ctorigdstport': return known(portInRanges(p.origDport, ports(v)));
        case 'ctreplsrcport': return known(portInRanges(p.dport, ports(v)));
        case 'ctstatus': return known(v.split(',').includes('NONE'));
        case 'ctdir': return known(v === 'ORIGINAL');
        default: return unsupported(module, o);
      }
    case 'comment': case 'limit':
      return known(true);
    case 'iprange':
      switch (o.name) {
        case 'src-range': return known(inRange(p.src, v));
        case 'dst-range': return known(inRange(p.dst, v));
        default: return unsupported(module, o);
      }
    default:
      return unsupported(module, o);
  }
}

const SELECTOR_FLAGS: Readonly<Record<string, string>> = {
  source: '-s', destination: '-d', protocol: '-p', 'in-interface': '-i', 'out-interface': '-o', fragment: '-f',
};

function describe(module: string, o: MatchOption): string {
  const flag = module === 'builtin' ? SELECTOR_FLAGS[o.name] ?? `--${o.name}` : `--${o.name}`;
  return `${o.negated ? '! ' : ''}${flag} ${o.args.join(' ')}`.trim();
}

/** A module-level verdict for modules whose meaning is not per-option (recent) or that constrain the protocol. */
function evalModule(m: RuleMatch, p: PacketState): OptionValue | null {
  if (m.module === 'tcp' || m.module === 'udp' || m.module === 'sctp') {
    return p.proto === m.module ? null : known(false);
  }
  if (m.module === 'multiport') return null;
  if (m.module === 'recent') {
    const has = (n: string): MatchOption | undefined => m.options.find((o) => o.name === n);
    const set = has('set');
    if (set !== undefined) return { value: !set.negated, assumed: 'recent --set: source recorded (first packet)' };
    const check = has('rcheck') ?? has('update') ?? has('remove');
    const name = check?.name ?? 'rcheck';
    const value = check?.negated ?? false;
    return { value, assumed: `recent --${name}: first packet, source not yet in the list, ${value ? 'matches' : 'no match'}` };
  }
  if (m.module === 'statistic') return null;
  if (m.module !== 'builtin' && !KNOWN_MODULES.has(m.module)) {
    return { value: false, assumed: `unknown match ${m.module}, assumed no match` };
  }
  return null;
}

const KNOWN_MODULES = new Set([
  'builtin', 'tcp', 'udp', 'sctp', 'multiport', 'addrtype', 'mark', 'state', 'conntrack',
  'statistic', 'recent', 'comment', 'limit', 'iprange',
]);

function statisticProbability(m: RuleMatch): OptionValue | number {
  const mode = m.options.find((o) => o.name === 'mode')?.args[0];
  if (mode !== 'random') return { value: false, assumed: `statistic --mode ${mode ?? '?'} is not supported, assumed no match` };
  const prob = m.options.find((o) => o.name === 'probability');
  const p = parseProbability(prob?.args[0] ?? '0');
  return prob?.negated === true ? 1 - p : p;
}

/** Evaluates all matches of `rule` for packet `p`. */
export function evaluateRule(rule: Rule, p: PacketState, ctx: MatchContext): RuleEvaluation {
  const notes: string[] = [];
  const failures: string[] = [];
  let probability = 1;
  for (const m of rule.matches) {
    const moduleValue = evalModule(m, p);
    if (moduleValue !== null) {
      if (!moduleValue.value) {
        if (moduleValue.assumed === undefined) return { matched: false, notes: [] };
        failures.push(moduleValue.assumed);
      } else if (moduleValue.assumed !== undefined) {
        notes.push(moduleValue.assumed);
      }
      continue;
    }
    if (m.module === 'statistic') {
      const s = statisticProbability(m);
      if (typeof s === 'number') probability *= s;
      else failures.push(s.assumed ?? 'statistic');
      continue;
    }
    for (const o of m.options) {
      const r = evalOption(m.module, o, p, ctx);
      const value = r.value !== o.negated;
      if (r.assumed === undefined) {
        if (!value) return { matched: false, notes: [] };
        continue;
      }
      const note = `${describe(m.module, o)}: ${r.assumed}, assumed ${value ? 'match' : 'no match'}`;
      if (value) notes.push(note);
      else failures.push(note);
    }
  }
  if (failures.length > 0) return { matched: false, notes: failures };
  if (probability <= 0) return { matched: false, notes: [] };
  return { matched: true, probability: Math.min(probability, 1), notes };
}
