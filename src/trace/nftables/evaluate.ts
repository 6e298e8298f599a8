/**
 * Evaluates one rule against the first packet of a new connection, statement
 * by statement as the kernel does: a failing match ends the rule, a verdict
 * or NAT statement ends it with that verdict, `mark set` and `update @set`
 * take effect in order.
 *
 * Facts the tracer cannot know (input interface, unmodelled expressions) are
 * assumptions: the match is taken to fail (to hold, under `!=`), and a note
 * says so. `numgen` values are not known either: the evaluation stops with a
 * `fork` outcome and the walker retries the rule once per value.
 */
import type { Expr, Hook, MapRef, NftElement, NftRule, NftSet, NftTable, NumgenExpr, Stmt, VerdictSpec } from './ruleset.js';
import { formatTyped, formatVal, natPort, type Val } from './values.js';
import { isLocalAddress, parseIp, type IpAddress } from '../iptables/values.js';
import type { Protocol } from '../iptables/matchers.js';
import { typesOf } from './expressions.js';

/** What the tracer knows about the packet at the current point of its trip. */
export interface NftPacketState {
  family: 'ipv4' | 'ipv6';
  src: IpAddress;
  dst: IpAddress;
  proto: Protocol;
  protoNumber: number;
  sport?: number;
  dport: number;
  mark: number;
  ctmark: number;
  /** The conntrack original tuple (before NAT). */
  origSrc: IpAddress;
  origDst: IpAddress;
  origDport: number;
  dnat: boolean;
  snat: boolean;
}

export interface EvalContext {
  table: NftTable;
  hook: Hook;
  origin: 'local' | 'forward';
  /** A local packet to a local address, back in through lo. */
  loopedBack: boolean;
  localAddresses: IpAddress[];
  /** Keys this path has added to dynamic sets, by `family table set`. */
  setAdds: ReadonlyMap<string, readonly Val[][]>;
  /** Values chosen for the rule's numgen expressions, in evaluation order. */
  decisions: readonly number[];
}

export type NatStmt = Extract<Stmt, { k: 'nat' }>;
type NatMapStmt = Extract<Stmt, { k: 'nat-map' }>;

/** The NAT target an element of a data map names: `address [. port]`; an Error message when it names none. */
function natTarget(el: NftElement): { address: string; port?: number } | string {
  const [addr, port, ...rest] = el.dataParts ?? [];
  if (addr === undefined || rest.length > 0) return `"${el.data ?? ''}" is not "address . port"`;
  // An interval map's data may be a range or a prefix; nf_nat picks from it, the tracer takes its first address.
  const address = addr.split(/[-/]/)[0] ?? addr;
  try {
    parseIp(address);
    return port === undefined ? { address } : { address, port: natPort(port) };
  } catch (err) {
    return `"${el.data ?? ''}": ${(err as Error).message}`;
  }
}

export type RuleOutcome =
  | { k: 'fork'; numgen: NumgenExpr }
  | {
    k: 'done';
    matched: boolean;
    notes: string[];
    /** Descriptions of what the rule did (verdict, NAT, mark set, set update, log). */
    actions: string[];
    verdict: VerdictSpec | null;
    nat: NatStmt | null;
    /** Comment of the map element a vmap lookup found. */
    elementComment?: string;
    mark: number;
    ctmark: number;
    setAdds: { set: string; key: Val[] }[];
  };

class NeedFork {
  constructor(readonly numgen: NumgenExpr) {}
}

type FieldResult = Val | { absent: true } | { unknown: string };

function addressType(a: IpAddress, ctx: EvalContext): string {
  if (isLocalAddress(a, ctx.localAddresses)) return 'local';
  if (a.range() === 'multicast') return 'multicast';
  if (a.kind() === 'ipv4' && a.toString() === '255.255.255.255') return 'broadcast';
  return 'unicast';
}

class RuleEvaluator {
  private numgenIndex = 0;
  readonly notes: string[] = [];
  mark: number;
  ctmark: number;
  readonly adds: { set: string; key: Val[] }[] = [];
  /** Comment of the map element a vmap or NAT map lookup found. */
  private elementComment: string | undefined;

  constructor(private readonly p: NftPacketState, private readonly ctx: EvalContext) {
    this.mark = p.mark;
    this.ctmark = p.ctmark;
  }

  private field(f: Extract<Expr, { k: 'field' }>): FieldResult {
    const p = this.p;
    if (f.family !== undefined && f.family !== p.family) return { absent: true };
    if (f.proto !== undefined && f.proto !== p.protoNumber) return { absent: true };
    switch (f.field) {
      case 'saddr': return { t: 'addr', a: p.src };
      case 'daddr': return { t: 'addr', a: p.dst };
      case 'l4proto': return { t: 'num', n: p.protoNumber };
      case 'dport': return { t: 'num', n: p.dport };
      case 'sport': return p.sport === undefined ? { unknown: 'source port not given' } : { t: 'num', n: p.sport };
      case 'mark': return { t: 'num', n: this.mark };
      case 'ctmark': return { t: 'num', n: this.ctmark };
      case 'ct state': return { t: 'flags', f: ['new'] };
      case 'ct status': return { t: 'flags', f: [...(p.dnat ? ['dnat'] : []), ...(p.snat ? ['snat'] : [])] };
      case 'ct direction': return { t: 'sym', s: 'original' };
      case 'ct original saddr': return { t: 'addr', a: p.origSrc };
      case 'ct original daddr': return { t: 'addr', a: p.origDst };
      case 'ct original proto-dst': return { t: 'num', n: p.origDport };
      case 'nfproto': return { t: 'sym', s: p.family };
      case 'ethertype': return { t: 'sym', s: p.family === 'ipv4' ? 'ip' : 'ip6' };
      case 'fib saddr type': return { t: 'sym', s: addressType(p.src, this.ctx) };
      case 'fib daddr type': return { t: 'sym', s: addressType(p.dst, this.ctx) };
      case 'tcp flags': return { t: 'flags', f: ['syn'] };
      case 'iifname':
        if (this.ctx.loopedBack) return { t: 'sym', s: 'lo' };
        if (this.ctx.origin === 'local') return { t: 'sym', s: '' };
        return { unknown: 'the input interface cannot be known' };
      case 'oifname':
        if (this.ctx.hook === 'prerouting' || this.ctx.hook === 'input') return { t: 'sym', s: '' };
        if (this.ctx.origin === 'local' && isLocalAddress(p.dst, this.ctx.localAddresses)) return { t: 'sym', s: 'lo' };
        return { unknown: 'the output interface cannot be known' };
      default:
        return { unknown: `${f.text} is not modelled` };
    }
  }

  /** Evaluates `e` to one value per component; throws NeedFork for an undecided numgen. */
  private eval(e: Expr): Val[] | { absent: true } | { unknown: string } {
    switch (e.k) {
      case 'field': {
        const v = this.field(e);
        return 't' in v ? [v] : v;
      }
      case 'const':
        return [{ t: 'num', n: e.n }];
      case 'unknown':
        return { unknown: `${e.text} is not modelled` };
      case 'numgen': {
        const value = this.ctx.decisions[this.numgenIndex++];
        if (value === undefined) throw new NeedFork(e);
        this.notes.push(`${e.text} → ${value} (probability 1/${e.mod})`);
        return [{ t: 'num', n: value }];
      }
      case 'binop': {
        const left = this.eval(e.left);
        if (!Array.isArray(left)) return left;
        const v = left[0];
        if (v === undefined || v.t !== 'num') return { unknown: `${e.text} is not a number` };
        const ops = { '&': v.n & e.right, '|': v.n | e.right, '^': v.n ^ e.right, '<<': v.n << e.right, '>>': v.n >>> e.right };
        return [{ t: 'num', n: ops[e.op] >>> 0 }];
      }
      case 'concat': {
        const out: Val[] = [];
        for (const part of e.parts) {
          const v = this.eval(part);
          if (!Array.isArray(v)) return v;
          out.push(...v);
        }
        return out;
      }
    }
  }

  private set(name: string): NftSet {
    const s = this.ctx.table.sets.get(name);
    if (s === undefined) throw new Error(`trace: set @${name} does not exist in table ${this.ctx.table.family} ${this.ctx.table.name}`);
    return s;
  }

  private setKey(name: string): string {
    return `${this.ctx.table.family} ${this.ctx.table.name} ${name}`;
  }

  private findElement(elements: readonly NftElement[], vals: Val[]): NftElement | undefined {
    return elements.find((el) => el.key.length === vals.length && el.key.every((m, i) => m.test(vals[i] as Val)));
  }

  /** Membership in a named set; a dynamic set is empty for the first packet but for this path's own updates. */
  private inSet(name: string, vals: Val[]): boolean {
    const set = this.set(name);
    if (!set.dynamic) return this.findElement(set.elements, vals) !== undefined;
    const own = [...(this.ctx.setAdds.get(this.setKey(name)) ?? []), ...this.adds.filter((a) => a.set === this.setKey(name)).map((a) => a.key)];
    const shown = vals.map((v) => formatVal(v)).join(' . ');
    if (own.some((k) => k.length === vals.length && k.every((v, i) => formatVal(v) === formatVal(vals[i] as Val)))) {
      this.notes.push(`@${name}: ${shown} was recorded earlier on this path`);
      return true;
    }
    const live = this.findElement(set.elements, vals) !== undefined;
    this.notes.push(`@${name} is filled by the packet path: first packet, ${shown} not recorded yet` +
      (live ? ` (the listed set holds ${shown}: a client with live affinity would match)` : ''));
    return false;
  }

  /** Runs the statements; returns the outcome (or throws NeedFork). */
  run(rule: NftRule): Extract<RuleOutcome, { k: 'done' }> {
    const actions: string[] = [];
    const done = (matched: boolean, verdict: VerdictSpec | null, nat: NatStmt | null): Extract<RuleOutcome, { k: 'done' }> => {
      const out: Extract<RuleOutcome, { k: 'done' }> = {
        k: 'done', matched, notes: this.notes, actions, verdict, nat, mark: this.mark, ctmark: this.ctmark, setAdds: this.adds,
      };
      if (this.elementComment !== undefined) out.elementComment = this.elementComment;
      return out;
    };
    for (const s of rule.stmts) {
      switch (s.k) {
        case 'match': {
          const vals = this.eval(s.lhs);
          if ('absent' in vals) return done(false, null, null);
          if ('unknown' in vals) {
            const assumed = s.op === '!=';
            this.notes.push(`${s.text}: ${vals.unknown}, assumed ${assumed ? 'match' : 'no match'}`);
            if (!assumed) return done(false, null, null);
            continue;
          }
          let hit: boolean;
          if (s.rhs.k === 'set') hit = this.inSet(s.rhs.name, vals);
          else if (s.rhs.k === 'matcher') hit = s.rhs.matcher.test(vals[0] as Val);
          else hit = this.findElement(s.rhs.elements, vals) !== undefined;
          if (hit !== (s.op === '==')) return done(false, null, null);
          continue;
        }
        case 'vmap': {
          const vals = this.eval(s.lhs);
          if ('absent' in vals) return done(false, null, null);
          if ('unknown' in vals) {
            this.notes.push(`${s.text}: ${vals.unknown}, assumed no match`);
            return done(false, null, null);
          }
          const el = this.findElement(this.mapElements(s.map), vals);
          if (el?.verdict === undefined) return done(false, null, null);
          const types = typesOf(s.lhs);
          const key = vals.map((v, i) => formatTyped(types[i] ?? 'unknown', v)).join(' . ');
          if (s.map.k === 'set' || s.lhs.k !== 'numgen') {
            this.notes.push(`${s.map.k === 'set' ? `@${s.map.name}` : 'vmap'}: ${key} → ${el.verdict.text}`);
          }
          if (el.comment !== undefined) this.elementComment = el.comment;
          return this.verdict(el.verdict, actions, done);
        }
        case 'verdict':
          return this.verdict(s.verdict, actions, done);
        case 'nat':
          actions.push(s.text);
          return done(true, null, s);
        case 'nat-map': {
          const nat = this.natMap(s);
          if (nat === null) return done(false, null, null);
          actions.push(s.text);
          return done(true, null, nat);
        }
        case 'set-meta': {
          const v = this.eval(s.value);
          if (!Array.isArray(v) || v[0]?.t !== 'num') {
            this.notes.push(`${s.text}: value cannot be computed, ${s.target === 'mark' ? 'mark' : 'ct mark'} unchanged`);
            continue;
          }
          if (s.target === 'mark') this.mark = v[0].n >>> 0;
          else this.ctmark = v[0].n >>> 0;
          actions.push(`${s.target === 'mark' ? 'mark' : 'ct mark'} set 0x${(v[0].n >>> 0).toString(16)}`);
          continue;
        }
        case 'set-update': {
          const vals = this.eval(s.key);
          if (!Array.isArray(vals)) {
            this.notes.push(`${s.text}: key cannot be computed, set unchanged`);
            continue;
          }
          if (s.op !== 'delete') this.adds.push({ set: this.setKey(s.set), key: vals });
          actions.push(`${s.op} @${s.set} { ${vals.map((v) => formatVal(v)).join(' . ')} }`);
          continue;
        }
        case 'noop':
          if (s.note !== undefined) this.notes.push(s.note);
          if (s.action !== undefined) actions.push(s.action);
          continue;
        case 'unknown':
          this.notes.push(`${s.text}: not modelled, assumed no match`);
          return done(false, null, null);
      }
    }
    return done(true, null, null);
  }

  private mapElements(map: MapRef): readonly NftElement[] {
    return map.k === 'inline' ? map.elements : this.set(map.name).elements;
  }

  /**
   * `dnat to KEY map @m`: the NAT the element for the key names, or null when the rule does not match
   * (the key cannot be computed, or is not in the map: the lookup breaks the rule, as NFT_BREAK does).
   */
  private natMap(s: NatMapStmt): NatStmt | null {
    const vals = this.eval(s.key);
    if ('absent' in vals) return null;
    const where = s.map.k === 'set' ? `@${s.map.name}` : 'map';
    if ('unknown' in vals) {
      this.notes.push(`${s.text}: ${vals.unknown}, assumed no match`);
      return null;
    }
    const types = typesOf(s.key);
    const key = vals.map((v, i) => formatTyped(types[i] ?? 'unknown', v)).join(' . ');
    const el = this.findElement(this.mapElements(s.map), vals);
    if (el === undefined) {
      this.notes.push(`${where}: no element for ${key}, no match`);
      return null;
    }
    const found = natTarget(el);
    // Typed maps cannot hold the other family's addresses; an anonymous map's data is not typed.
    const target = typeof found !== 'string' && parseIp(found.address).kind() !== this.p.family ? `"${el.data ?? ''}" is not an ${this.p.family} address` : found;
    if (typeof target === 'string') {
      this.notes.push(`${where}: ${key} → ${target}, assumed no match`);
      return null;
    }
    this.notes.push(`${where}: ${key} → ${el.data ?? ''}`);
    if (el.comment !== undefined) this.elementComment = el.comment;
    const nat: NatStmt = { k: 'nat', nat: s.nat, address: target.address, text: s.text };
    if (target.port !== undefined) nat.port = target.port;
    return nat;
  }

  private verdict(
    v: VerdictSpec, actions: string[], done: (m: boolean, v: VerdictSpec | null, n: NatStmt | null) => Extract<RuleOutcome, { k: 'done' }>,
  ): Extract<RuleOutcome, { k: 'done' }> {
    if (v.kind !== 'continue') actions.push(v.kind === 'jump' || v.kind === 'goto' ? `${v.kind} ${v.chain ?? ''}` : v.kind);
    return done(true, v.kind === 'continue' ? null : v, null);
  }
}

/** Evaluates `rule` for packet `p` (which it does not change). */
export function evaluateRule(rule: NftRule, p: NftPacketState, ctx: EvalContext): RuleOutcome {
  try {
    return new RuleEvaluator(p, ctx).run(rule);
  } catch (err) {
    if (err instanceof NeedFork) return { k: 'fork', numgen: err.numgen };
    throw err;
  }
}
