/**
 * Packet tracer over a parsed nftables ruleset: follows the first packet of a
 * new connection through the base chains of every table of its family, hook
 * by hook and by priority within a hook, as the kernel does, and enumerates
 * every path `numgen` can send it down, with its probability. The result has
 * the same shape as the iptables tracer's (src/trace/iptables/trace.ts), so
 * one behaviour table can run against both.
 *
 * Hooks:
 *   'forward': prerouting → input if the (possibly DNATed) destination is local, else
 *              forward → postrouting.
 *   'local':   output → postrouting, then, if the destination is local, the packet comes
 *              back in through lo: prerouting → input, with no nat chains (conntrack
 *              already holds the NAT bindings).
 * In a nat chain a NAT statement is final for the hook: once a destination (prerouting,
 * output) or source (postrouting, input) binding exists, later nat chains of that hook
 * are skipped, as nf_nat does. accept ends only the current base chain; drop and reject
 * end the trip.
 */
import type { Hook, NftChain, NftRule, NftRuleset, NftTable, VerdictSpec } from './ruleset.js';
import { evaluateRule, type EvalContext, type NatStmt, type NftPacketState } from './evaluate.js';
import type { Val } from './values.js';
import { PROTOCOLS } from './values.js';
import { isLocalAddress, parseIp, type IpAddress } from '../iptables/values.js';
import type { TraceOptions, TracePacket, TracePath, TraceResult, TraceStep, Verdict } from '../iptables/trace.js';
import { checkPacket, summarize } from '../packet.js';

export type { TraceOptions, TracePacket, TracePath, TraceResult, TraceStep, Verdict };

/** Jumps nested deeper than this are refused by the kernel (NFT_JUMP_STACK_SIZE). */
export const MAX_JUMP_DEPTH = 16;
/** Jumps + gotos in one base chain traversal before the tracer assumes a loop. */
export const MAX_HOPS = 10_000;
/** Maximum number of paths enumerated before giving up. */
const MAX_PATHS = 100_000;

interface BaseEntry {
  table: NftTable;
  chain: NftChain;
}

interface Frame {
  table: NftTable;
  chain: NftChain;
  /** Index of the next rule to evaluate. */
  index: number;
}

interface WalkState {
  origin: TracePacket['origin'];
  hook: Hook;
  /** Index into the hook's base chains (sorted by priority). */
  chainIndex: number;
  loopedBack: boolean;
  /** A destination / source NAT binding exists: later nat chains of the hook are skipped. */
  natDst: boolean;
  natSrc: boolean;
  probability: number;
  packet: NftPacketState;
  steps: TraceStep[];
  masquerade: boolean;
  dnat?: { address: string; port: number } | undefined;
  stack: Frame[];
  frame: Frame | null;
  base: BaseEntry | null;
  hops: number;
  /** numgen values chosen for `rule` (set by a fork, used when the rule is evaluated again). */
  decided: { rule: NftRule; values: number[] } | null;
  setAdds: Map<string, Val[][]>;
}

function cloneState(s: WalkState): WalkState {
  return {
    ...s,
    packet: { ...s.packet },
    steps: [...s.steps],
    stack: s.stack.map((f) => ({ ...f })),
    frame: s.frame === null ? null : { ...s.frame },
    dnat: s.dnat === undefined ? undefined : { ...s.dnat },
    setAdds: new Map([...s.setAdds].map(([k, v]) => [k, [...v]])),
  };
}

/** Base chains of `family`'s tables for each hook, by priority (ties: table, then chain, order). */
function baseChains(rs: NftRuleset, family: 'ipv4' | 'ipv6'): Map<Hook, BaseEntry[]> {
  const byHook = new Map<Hook, BaseEntry[]>();
  const want = family === 'ipv4' ? 'ip' : 'ip6';
  for (const table of rs.tables.values()) {
    if (table.family !== want && table.family !== 'inet') continue;
    for (const chain of table.chains.values()) {
      if (chain.base === null) continue;
      const list = byHook.get(chain.base.hook) ?? [];
      list.push({ table, chain });
      byHook.set(chain.base.hook, list);
    }
  }
  for (const list of byHook.values()) list.sort((a, b) => (a.chain.base?.priority ?? 0) - (b.chain.base?.priority ?? 0));
  return byHook;
}

function tableName(t: NftTable): string {
  return `${t.family} ${t.name}`;
}

function makeStep(rule: NftRule, action: string, notes: string[], comment?: string): TraceStep {
  const st: TraceStep = { table: rule.table, chain: rule.chain, rule: rule.raw, action };
  const c = rule.comment ?? comment;
  if (c !== undefined) st.comment = c;
  if (notes.length > 0) st.notes = notes;
  return st;
}

function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

class Walker {
  private readonly chains: Map<Hook, BaseEntry[]>;

  constructor(rs: NftRuleset, family: 'ipv4' | 'ipv6', private readonly localAddresses: IpAddress[]) {
    this.chains = baseChains(rs, family);
  }

  private skipped(s: WalkState, e: BaseEntry): boolean {
    if (e.chain.base?.type !== 'nat') return false;
    if (s.loopedBack) return true;
    if (s.hook === 'prerouting' || s.hook === 'output') return s.natDst;
    if (s.hook === 'postrouting' || s.hook === 'input') return s.natSrc;
    return false;
  }

  private nextHook(s: WalkState): Hook | null {
    const local = isLocalAddress(s.packet.dst, this.localAddresses);
    switch (s.hook) {
      case 'prerouting': return local || s.loopedBack ? 'input' : 'forward';
      case 'forward': case 'output': return 'postrouting';
      case 'postrouting':
        if (s.origin === 'local' && !s.loopedBack && local) {
          s.loopedBack = true;
          return 'prerouting';
        }
        return null;
      default: return null;
    }
  }

  private finish(s: WalkState, verdict: Verdict): TracePath {
    const path: TracePath = { probability: s.probability, verdict, masquerade: s.masquerade, mark: s.packet.mark, steps: s.steps };
    if (s.dnat !== undefined) path.dnat = s.dnat;
    return path;
  }

  private endBaseChain(s: WalkState): void {
    s.frame = null;
    s.stack = [];
    s.base = null;
    s.chainIndex++;
  }

  /** Leaves the current chain; at the bottom of the stack the base chain's policy applies. */
  private leaveChain(s: WalkState): Verdict | null {
    const caller = s.stack.pop();
    if (caller !== undefined) {
      s.frame = caller;
      return null;
    }
    const base = s.base;
    if (base?.chain.base?.policy === 'drop') {
      s.steps.push({ table: tableName(base.table), chain: base.chain.name, rule: '(policy DROP)', action: 'drop' });
      return 'DROP';
    }
    this.endBaseChain(s);
    return null;
  }

  private applyNat(s: WalkState, nat: NatStmt): string {
    const p = s.packet;
    if (nat.nat === 'dnat' || nat.nat === 'redirect') {
      let address: IpAddress;
      if (nat.nat === 'dnat') address = parseIp(nat.address ?? '');
      else {
        const own = s.origin === 'local' ? undefined : this.localAddresses.find((a) => a.kind() === p.dst.kind());
        address = own ?? parseIp(p.family === 'ipv4' ? '127.0.0.1' : '::1');
      }
      const port = nat.port ?? p.dport;
      p.dst = address;
      p.dport = port;
      p.dnat = true;
      s.natDst = true;
      s.dnat = { address: address.toString(), port };
      return `${nat.nat} to ${formatEndpoint(address.toString(), port)}`;
    }
    s.masquerade = true;
    p.snat = true;
    s.natSrc = true;
    return nat.text;
  }

  private jump(s: WalkState, rule: NftRule, v: VerdictSpec, frame: Frame): Verdict | null {
    const target = frame.table.chains.get(v.chain ?? '');
    if (target === undefined) throw new Error(`trace: chain ${v.chain ?? ''} does not exist in table ${tableName(frame.table)}`);
    s.hops++;
    if ((v.kind === 'jump' && s.stack.length >= MAX_JUMP_DEPTH) || s.hops > MAX_HOPS) {
      const why = s.hops > MAX_HOPS ? `more than ${MAX_HOPS} jumps` : `jump depth limit ${MAX_JUMP_DEPTH} exceeded`;
      const last = s.steps[s.steps.length - 1];
      const action = `drop (loop: ${why})`;
      if (last !== undefined && last.rule === rule.raw && last.chain === rule.chain) last.action = action;
      else s.steps.push(makeStep(rule, action, []));
      return 'DROP';
    }
    if (v.kind === 'jump') s.stack.push(frame);
    s.frame = { table: frame.table, chain: target, index: 0 };
    return null;
  }

  /** Runs `s` until its path ends (returns the path) or forks (returns the branches). */
  run(s: WalkState): TracePath | WalkState[] {
    for (;;) {
      if (s.frame === null) {
        const entry = this.chains.get(s.hook)?.[s.chainIndex];
        if (entry !== undefined && this.skipped(s, entry)) {
          s.chainIndex++;
          continue;
        }
        if (entry === undefined) {
          const next = this.nextHook(s);
          if (next === null) return this.finish(s, 'ACCEPT');
          s.hook = next;
          s.chainIndex = 0;
          continue;
        }
        s.base = entry;
        s.frame = { table: entry.table, chain: entry.chain, index: 0 };
        s.stack = [];
        s.hops = 0;
        continue;
      }
      const frame = s.frame;
      const rule = frame.chain.rules[frame.index];
      if (rule === undefined) {
        const verdict = this.leaveChain(s);
        if (verdict !== null) return this.finish(s, verdict);
        continue;
      }
      frame.index++;
      const decisions = s.decided?.rule === rule ? s.decided.values : [];
      const ctx: EvalContext = {
        table: frame.table, hook: s.hook, origin: s.origin, loopedBack: s.loopedBack,
        localAddresses: this.localAddresses, setAdds: s.setAdds, decisions,
      };
      const out = evaluateRule(rule, s.packet, ctx);
      if (out.k === 'fork') {
        frame.index--;
        const branches: WalkState[] = [];
        for (let v = out.numgen.offset; v < out.numgen.offset + out.numgen.mod; v++) {
          const b = out.numgen.mod === 1 ? s : cloneState(s);
          b.probability *= 1 / out.numgen.mod;
          b.decided = { rule, values: [...decisions, v] };
          branches.push(b);
        }
        return branches;
      }
      s.decided = null;
      s.packet.mark = out.mark;
      s.packet.ctmark = out.ctmark;
      for (const add of out.setAdds) s.setAdds.set(add.set, [...(s.setAdds.get(add.set) ?? []), add.key]);
      if (!out.matched) {
        if (out.notes.length > 0 || out.actions.length > 0) {
          s.steps.push(makeStep(rule, ['no match', ...out.actions].join('; '), out.notes, out.elementComment));
        }
        continue;
      }
      const actions = [...out.actions];
      const notes = out.verdict?.kind === 'queue' ? [...out.notes, 'queue is not modelled, assumed accept'] : out.notes;
      if (out.nat !== null) actions[actions.length - 1] = this.applyNat(s, out.nat);
      if (actions.length > 0 || notes.length > 0) {
        s.steps.push(makeStep(rule, actions.length > 0 ? actions.join('; ') : 'continue', notes, out.elementComment));
      }
      if (out.nat !== null) {
        this.endBaseChain(s);
        continue;
      }
      const v = out.verdict;
      if (v === null) continue;
      switch (v.kind) {
        case 'accept': case 'queue': this.endBaseChain(s); break;
        case 'drop': return this.finish(s, 'DROP');
        case 'reject': return this.finish(s, 'REJECT');
        case 'return': {
          const verdict = this.leaveChain(s);
          if (verdict !== null) return this.finish(s, verdict);
          break;
        }
        case 'jump': case 'goto': {
          const verdict = this.jump(s, rule, v, frame);
          if (verdict !== null) return this.finish(s, verdict);
          break;
        }
        case 'continue': break;
      }
    }
  }
}


/**
 * Traces the first packet of a new connection through `rs`; same contract as the iptables
 * tracer's tracePacket. Throws an Error on an invalid packet or local address.
 */
export function traceNftPacket(rs: NftRuleset, packet: TracePacket, opts: TraceOptions): TraceResult {
  const { src, dst, localAddresses } = checkPacket(packet, opts);
  const family = src.kind() === 'ipv4' ? 'ipv4' : 'ipv6';
  const walker = new Walker(rs, family, localAddresses);

  const state: NftPacketState = {
    family, src, dst, proto: packet.proto, protoNumber: PROTOCOLS[packet.proto] ?? 0, dport: packet.dport,
    mark: 0, ctmark: 0, origSrc: src, origDst: dst, origDport: packet.dport, dnat: false, snat: false,
  };
  if (packet.sport !== undefined) state.sport = packet.sport;
  const initial: WalkState = {
    origin: packet.origin,
    hook: packet.origin === 'local' ? 'output' : 'prerouting',
    chainIndex: 0, loopedBack: false, natDst: false, natSrc: false,
    probability: 1, packet: state, steps: [], masquerade: false,
    stack: [], frame: null, base: null, hops: 0, decided: null, setAdds: new Map(),
  };

  const paths: TracePath[] = [];
  const pending: WalkState[] = [initial];
  for (let s = pending.pop(); s !== undefined; s = pending.pop()) {
    const out = walker.run(s);
    if (Array.isArray(out)) {
      pending.push(...[...out].reverse());
      if (paths.length + pending.length > MAX_PATHS) throw new Error(`trace: more than ${MAX_PATHS} paths, giving up`);
    } else {
      paths.push(out);
    }
  }
  return summarize(paths);
}
