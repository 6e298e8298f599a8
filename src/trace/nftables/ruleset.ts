/**
 * The parsed form of an nftables ruleset: tables with their chains, rules,
 * sets and maps, as the kernel would hold them after the commands were run.
 */
import type { Matcher, ValueType } from './values.js';

export type Family = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
export const FAMILIES: readonly Family[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'];

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';
export const HOOKS: readonly Hook[] = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'];

export interface BaseChainSpec {
  type: 'filter' | 'nat' | 'route';
  hook: Hook;
  /** Numeric priority (named priorities resolved, e.g. `dstnat - 10` is -110). */
  priority: number;
  policy: 'accept' | 'drop';
}

// ---- expressions and statements of a rule ----

export type BinOp = '&' | '|' | '^' | '<<' | '>>';

export interface NumgenExpr {
  k: 'numgen';
  mode: 'random' | 'inc';
  mod: number;
  offset: number;
  text: string;
}

export type Expr =
  /**
   * A packet/conntrack/routing field, e.g. `ip daddr`, `meta l4proto`, `fib daddr type`. `proto` and
   * `family` are the implicit dependencies nft adds (`tcp dport` only exists in TCP packets, `ip saddr`
   * only in IPv4 ones): a packet without them does not match, definitely.
   */
  | { k: 'field'; field: string; type: ValueType; text: string; proto?: number; family?: 'ipv4' | 'ipv6' }
  | { k: 'binop'; op: BinOp; left: Expr; right: number; type: ValueType; text: string }
  | { k: 'concat'; parts: Expr[]; text: string }
  | NumgenExpr
  /** A literal number (right side of `mark set …`). */
  | { k: 'const'; n: number; text: string }
  | { k: 'unknown'; text: string; type: ValueType };

export interface VerdictSpec {
  kind: 'accept' | 'drop' | 'reject' | 'return' | 'continue' | 'jump' | 'goto' | 'queue';
  /** Target chain of jump/goto. */
  chain?: string;
  text: string;
}

/** An element of a set or map, or of an inline `{ … }` set. */
export interface NftElement {
  /** One matcher per key component (`172.30.0.41 . tcp . 80` has three). */
  key: Matcher[];
  keyText: string;
  /** Verdict of a verdict-map element, or the data of a data-map element. */
  verdict?: VerdictSpec;
  data?: string;
  /** The components of `data` (`10.244.1.1 . 8080` has two). */
  dataParts?: string[];
  comment?: string;
}

export type Rhs =
  /** Literal values or an inline `{ … }` set: the value matches if any element matches. */
  | { k: 'elements'; elements: NftElement[]; text: string }
  | { k: 'set'; name: string; text: string }
  /** A masked flag comparison or an ordering, already compiled. */
  | { k: 'matcher'; matcher: Matcher; text: string };

export type Op = '==' | '!=';

/** A named map (`@name`) or an anonymous one written in the rule (`{ … }`). */
export type MapRef = { k: 'set'; name: string } | { k: 'inline'; elements: NftElement[] };

export type Stmt =
  | { k: 'match'; lhs: Expr; op: Op; rhs: Rhs; text: string }
  | { k: 'vmap'; lhs: Expr; map: MapRef; text: string }
  | { k: 'verdict'; verdict: VerdictSpec; text: string }
  | { k: 'set-meta'; target: 'mark' | 'ctmark'; value: Expr; text: string }
  | { k: 'nat'; nat: 'dnat' | 'snat' | 'masquerade' | 'redirect'; address?: string; port?: number; text: string }
  /**
   * `dnat ip to KEY map @m` (or `map { … }`): the key, numgen included, is looked up in a data map
   * whose values are `address [. port]`. A miss ends the rule without a match (NFT_BREAK).
   */
  | { k: 'nat-map'; nat: 'dnat' | 'snat'; key: Expr; map: MapRef; text: string }
  | { k: 'set-update'; op: 'add' | 'update' | 'delete'; set: string; key: Expr; text: string }
  /** counter, log, notrack, limit, …: no effect on the trace (noted when `note` is set). */
  | { k: 'noop'; text: string; note?: string; action?: string }
  /** An expression the tracer does not model: the rule is assumed not to match. */
  | { k: 'unknown'; text: string };

export interface NftRule {
  /** `family name` of the table, e.g. `ip kube-proxy`. */
  table: string;
  chain: string;
  /** The rule's text as written (statements only, without `add rule …` or `# handle`). */
  raw: string;
  stmts: Stmt[];
  comment?: string;
  handle: number;
  /** 1-based line in the parsed text. */
  line: number;
}

export interface NftChain {
  name: string;
  base: BaseChainSpec | null;
  rules: NftRule[];
  comment?: string;
  handle: number;
}

export interface NftSet {
  name: string;
  isMap: boolean;
  keyTypes: ValueType[];
  /** `verdict` for verdict maps; another datatype for data maps (the first one of a concatenation). */
  dataType?: ValueType;
  /** Every component of a data map's data (`ip daddr . th dport` has two); absent for sets and verdict maps. */
  dataTypes?: ValueType[];
  flags: string[];
  elements: NftElement[];
  comment?: string;
  handle: number;
  /**
   * Filled from the packet path (`flags dynamic`, or the target of an `update`/`add @set` statement):
   * the tracer follows the first packet of a connection, so such a set is taken to be empty.
   */
  dynamic: boolean;
  line: number;
}

export interface NftTable {
  family: Family;
  name: string;
  chains: Map<string, NftChain>;
  sets: Map<string, NftSet>;
  comment?: string;
  handle: number;
  /** Last handle given out in this table (the kernel numbers tables' objects from one counter). */
  lastHandle: number;
}

export interface NftRuleset {
  /** Tables in creation order, keyed `family name`. */
  tables: Map<string, NftTable>;
}

export function tableKey(family: Family, name: string): string {
  return `${family} ${name}`;
}
