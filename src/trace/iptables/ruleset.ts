/**
 * Data model of a parsed iptables ruleset, plus the vocabulary (tables,
 * built-in chains, match modules and targets) the parser knows about.
 */

/** One option of a match, e.g. `! --mark 0x4000/0x4000` → { name: 'mark', args: ['0x4000/0x4000'], negated: true }. */
export interface MatchOption {
  /** Canonical name without dashes. Built-in selectors use their long names: source, destination, protocol, in-interface, out-interface, fragment. */
  name: string;
  args: string[];
  negated: boolean;
}

/** A match module with the options given to it. */
export interface RuleMatch {
  /** 'builtin' for the selectors -s/-d/-p/-i/-o/-f; otherwise the `-m` module name (tcp, comment, mark, …). */
  module: string;
  /** True when the module was loaded implicitly by `-p tcp --dport 80` without `-m tcp`. */
  implicit: boolean;
  options: MatchOption[];
}

export interface TargetOption {
  name: string;
  args: string[];
}

export interface RuleTarget {
  /** 'jump' for `-j`, 'goto' for `-g`. */
  kind: 'jump' | 'goto';
  /** Chain name or target extension (ACCEPT, DNAT, MARK, …). */
  name: string;
  /** Raw tokens after the target name, e.g. ['--to-destination', '10.244.1.2:8080']. */
  args: string[];
  /** The same, grouped per option. */
  options: TargetOption[];
}

export interface Rule {
  table: string;
  chain: string;
  /** The line as written (trimmed). */
  raw: string;
  /** 1-based line number in the parsed text. */
  line: number;
  matches: RuleMatch[];
  /** null when the rule has no -j/-g (it only counts packets). */
  target: RuleTarget | null;
  /** The `-m comment --comment` text, if any. */
  comment?: string;
}

export type Policy = 'ACCEPT' | 'DROP';

export interface Chain {
  name: string;
  builtin: boolean;
  /** null for user-defined chains (declared with `-`). */
  policy: Policy | null;
  rules: Rule[];
}

export interface Table {
  name: string;
  chains: Map<string, Chain>;
}

export interface Ruleset {
  tables: Map<string, Table>;
}

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** Number of arguments an option takes; VARIADIC means "until the next option". */
export const VARIADIC = -1;

/** Match modules whose options the parser knows, with each option's arity. */
export const MODULE_OPTIONS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  tcp: { dport: 1, sport: 1, syn: 0, 'tcp-flags': 2, 'tcp-option': 1 },
  udp: { dport: 1, sport: 1 },
  sctp: { dport: 1, sport: 1, 'chunk-types': VARIADIC },
  multiport: { dports: 1, sports: 1, ports: 1 },
  addrtype: { 'dst-type': 1, 'src-type': 1, 'limit-iface-in': 0, 'limit-iface-out': 0 },
  mark: { mark: 1 },
  conntrack: {
    ctstate: 1, ctproto: 1, ctorigsrc: 1, ctorigdst: 1, ctreplsrc: 1, ctrepldst: 1,
    ctorigsrcport: 1, ctorigdstport: 1, ctreplsrcport: 1, ctrepldstport: 1,
    ctstatus: 1, ctexpire: 1, ctdir: 1,
  },
  state: { state: 1 },
  statistic: { mode: 1, probability: 1, every: 1, packet: 1 },
  recent: {
    name: 1, set: 0, rcheck: 0, update: 0, remove: 0, seconds: 1, reap: 0,
    hitcount: 1, rttl: 0, rsource: 0, rdest: 0, mask: 1,
  },
  comment: { comment: 1 },
  iprange: { 'src-range': 1, 'dst-range': 1 },
  limit: { limit: 1, 'limit-burst': 1 },
};

/** Long spellings normalised to the short ones iptables-save prints. */
export const OPTION_ALIASES: Readonly<Record<string, string>> = {
  'destination-port': 'dport',
  'source-port': 'sport',
  'destination-ports': 'dports',
  'source-ports': 'sports',
};

/** Target options whose single value may look like an option (e.g. a log prefix starting with '-'). */
export const TARGET_OPTION_ARITY: Readonly<Record<string, number>> = {
  'log-prefix': 1,
  'log-level': 1,
  'to-destination': 1,
  'to-source': 1,
  'to-ports': 1,
  'reject-with': 1,
  'set-xmark': 1,
  'set-mark': 1,
  'or-mark': 1,
  'and-mark': 1,
  'xor-mark': 1,
};

/** Target extensions; any other target name must be a chain of the same table. */
export const KNOWN_TARGETS: ReadonlySet<string> = new Set([
  'ACCEPT', 'DROP', 'RETURN', 'REJECT', 'QUEUE', 'NFQUEUE',
  'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP',
  'MARK', 'CONNMARK', 'LOG', 'NFLOG', 'ULOG', 'NOTRACK', 'CT', 'TRACE',
  'TCPMSS', 'CLASSIFY', 'DSCP', 'TOS', 'TTL', 'HL', 'SECMARK', 'CONNSECMARK',
  'AUDIT', 'CHECKSUM', 'SET', 'TEE', 'TPROXY', 'IDLETIMER', 'LED', 'RATEEST',
  'HMARK', 'SYNPROXY', 'CLUSTERIP', 'ECN',
]);

/** Protocol names accepted by `-p` (numbers 0-255 are accepted too). */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  all: 0, icmp: 1, igmp: 2, tcp: 6, udp: 17, dccp: 33, gre: 47, esp: 50, ah: 51,
  icmpv6: 58, 'ipv6-icmp': 58, sctp: 132, udplite: 136, mh: 135,
};

/** The first value of option `name` in `options`, if present. */
export function targetOption(target: RuleTarget, name: string): string | undefined {
  return target.options.find((o) => o.name === name)?.args[0];
}
