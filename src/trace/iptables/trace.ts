/**
 * Packet tracer: follows the first packet of a new connection through the
 * netfilter hooks and tables of a parsed iptables ruleset, the way the kernel
 * does, and enumerates every path a `-m statistic --mode random` rule can
 * send it down, with its probability.
 *
 * Hook order (tables in priority order within a hook):
 *   'forward': PREROUTING (raw, mangle, nat) → INPUT (mangle, filter, security, nat) if the
 *              possibly DNATed destination is local, else FORWARD (mangle, filter, security)
 *              → POSTROUTING (mangle, nat).
 *   'local':   OUTPUT (raw, mangle, nat, filter, security) → POSTROUTING (mangle, nat), and, if
 *              the destination is local, the packet loops back through lo: PREROUTING (raw,
 *              mangle) → INPUT (mangle, filter, security); nat is not consulted again.
 */
import type { Chain, Rule, Ruleset } from './ruleset.js';
import { evaluateRule, type MatchContext, type PacketState, type Protocol } from './matchers.js';
import { applyTarget, makeStep, type Walk } from './targets.js';
import { isLocalAddress } from './values.js';
import { checkPacket, summarize } from '../packet.js';

export interface TracePacket {
  /**
   * 'local': sent by a process on this host (OUTPUT, POSTROUTING, then INPUT via lo if the destination is local);
   * 'forward': arrives on an interface (PREROUTING, then INPUT if the possibly DNATed destination is local,
   * else FORWARD and POSTROUTING).
   */
  origin: 'local' | 'forward';
  src: string;
  dst: string;
  proto: Protocol;
  dport: number;
  sport?: number;
}

export interface TraceOptions {
  /** Addresses of this host, for `-m addrtype --dst-type LOCAL` and the INPUT/FORWARD decision; 127.0.0.0/8 and ::1 are always local. */
  localAddresses: string[];
}

export interface TraceStep {
  table: string;
  chain: string;
  /** Raw rule text (or "(policy DROP)" for a built-in chain's policy). */
  rule: string;
  /** e.g. 'jump KUBE-SVC-…', 'DNAT 10.244.1.2:8080', 'MARK 0x4000', 'REJECT', 'no match'. */
  action: string;
  /** The rule's `--comment`, if any. */
  comment?: string;
  /** Assumptions and details (statistic branch, unknown matches, interfaces, …). */
  notes?: string[];
}

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface TracePath {
  probability: number;
  verdict: Verdict;
  dnat?: { address: string; port: number };
  masquerade: boolean;
  mark: number;
  steps: TraceStep[];
}

export interface TraceResult {
  verdict: Verdict | 'MIXED';
  endpoints: { address: string; port: number; probability: number }[];
  masquerade: 'always' | 'never' | 'some';
  paths: TracePath[];
}

type Hook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

const HOOK_TABLES: Readonly<Record<Hook, readonly string[]>> = {
  PREROUTING: ['raw', 'mangle', 'nat'],
  INPUT: ['mangle', 'filter', 'security', 'nat'],
  FORWARD: ['mangle', 'filter', 'security'],
  OUTPUT: ['raw', 'mangle', 'nat', 'filter', 'security'],
  POSTROUTING: ['mangle', 'nat'],
};

/** Maximum number of paths enumerated before giving up. */
const MAX_PATHS = 100_000;

interface WalkState extends Walk {
  origin: TracePacket['origin'];
  hook: Hook;
  tableIndex: number;
  /** A local packet looping back through lo after POSTROUTING. */
  loopedBack: boolean;
  /** The outcome of a statistic fork, applied when the rule is evaluated again. */
  decided: { rule: Rule; matched: boolean; notes: string[] } | null;
}

function cloneState(s: WalkState): WalkState {
  return {
    ...s,
    packet: { ...s.packet },
    steps: [...s.steps],
    stack: s.stack.map((f) => ({ ...f })),
    frame: s.frame === null ? null : { ...s.frame },
    dnat: s.dnat === undefined ? undefined : { ...s.dnat },
  };
}

function nextHook(s: WalkState, ctx: MatchContext): Hook | null {
  const local = isLocalAddress(s.packet.dst, ctx.localAddresses);
  switch (s.hook) {
    case 'PREROUTING': return local || s.loopedBack ? 'INPUT' : 'FORWARD';
    case 'FORWARD': return 'POSTROUTING';
    case 'OUTPUT': return 'POSTROUTING';
    case 'POSTROUTING':
      if (s.origin === 'local' && !s.loopedBack && local) {
        s.loopedBack = true;
        return 'PREROUTING';
      }
      return null;
    case 'INPUT': return null;
  }
}

function finishPath(s: WalkState, verdict: Verdict): TracePath {
  const path: TracePath = {
    probability: s.probability,
    verdict,
    masquerade: s.masquerade,
    mark: s.packet.mark,
    steps: s.steps,
  };
  if (s.dnat !== undefined) path.dnat = s.dnat;
  return path;
}

/** Runs `s` until its path ends (returns the path) or forks (returns the two branches). */
function run(rules: Ruleset, s: WalkState, ctx: MatchContext): TracePath | [WalkState, WalkState] {
  for (;;) {
    if (s.frame === null) {
      const tables = HOOK_TABLES[s.hook].filter((t) => !(s.loopedBack && t === 'nat'));
      const tableName = tables[s.tableIndex];
      if (tableName === undefined) {
        const next = nextHook(s, ctx);
        if (next === null) return finishPath(s, 'ACCEPT');
        s.hook = next;
        s.tableIndex = 0;
        continue;
      }
      const chain = rules.tables.get(tableName)?.chains.get(s.hook);
      if (chain === undefined) {
        s.tableIndex++;
        continue;
      }
      s.baseChain = chain;
      s.frame = { chain, index: 0 };
      s.stack = [];
      s.hops = 0;
      continue;
    }

    const frame = s.frame;
    const rule = frame.chain.rules[frame.index];
    if (rule === undefined) {
      const verdict = chainEnd(s);
      if (verdict !== null) return finishPath(s, verdict);
      continue;
    }
    frame.index++;

    let notes: string[];
    const decided = s.decided;
    if (decided !== null && decided.rule === rule) {
      s.decided = null;
      if (!decided.matched) {
        s.steps.push(makeStep(rule, 'no match', decided.notes));
        continue;
      }
      notes = decided.notes;
    } else {
      const ev = evaluateRule(rule, s.packet, ctx);
      if (!ev.matched) {
        if (ev.notes.length > 0) s.steps.push(makeStep(rule, 'no match', ev.notes));
        continue;
      }
      notes = ev.notes;
      if (ev.probability < 1) {
        frame.index--;
        const taken = cloneState(s);
        taken.probability *= ev.probability;
        taken.decided = { rule, matched: true, notes: [...ev.notes, `statistic: matched (probability ${round(ev.probability)})`] };
        const skipped = cloneState(s);
        skipped.probability *= 1 - ev.probability;
        skipped.decided = { rule, matched: false, notes: [`statistic: not matched (probability ${round(1 - ev.probability)})`] };
        return [taken, skipped];
      }
    }

    const outcome = applyTarget(s, rule, notes, rules, { local: s.origin === 'local', localAddresses: ctx.localAddresses });
    if (outcome === 'ACCEPT') finishTable(s);
    else if (outcome === 'DROP' || outcome === 'REJECT') return finishPath(s, outcome);
    else if (outcome === 'RETURN') {
      const verdict = returnFromChain(s);
      if (verdict !== null) return finishPath(s, verdict);
    }
  }
}

function finishTable(s: WalkState): void {
  s.frame = null;
  s.stack = [];
  s.tableIndex++;
}

/** End of chain: built-in chains apply their policy, user chains return. Returns a final verdict or null to continue. */
function chainEnd(s: WalkState): Verdict | null {
  const frame = s.frame;
  if (frame !== null && frame.chain.builtin) return applyPolicy(s, frame.chain);
  return returnFromChain(s);
}

function returnFromChain(s: WalkState): Verdict | null {
  const caller = s.stack.pop();
  if (caller !== undefined) {
    s.frame = caller;
    return null;
  }
  return s.baseChain === null ? null : applyPolicy(s, s.baseChain);
}

function round(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}

function applyPolicy(s: WalkState, chain: Chain): Verdict | null {
  if (chain.policy === 'DROP') {
    s.steps.push({ table: tableOf(s), chain: chain.name, rule: '(policy DROP)', action: 'DROP' });
    return 'DROP';
  }
  finishTable(s);
  return null;
}

function tableOf(s: WalkState): string {
  const tables = HOOK_TABLES[s.hook].filter((t) => !(s.loopedBack && t === 'nat'));
  return tables[s.tableIndex] ?? '?';
}


/** Traces `packet` through `rules`; throws an Error on an invalid packet or local address. */
export function tracePacket(rules: Ruleset, packet: TracePacket, opts: TraceOptions): TraceResult {
  const { src, dst, localAddresses } = checkPacket(packet, opts);
  const ctx: MatchContext = { localAddresses };

  const state: PacketState = {
    src, dst, proto: packet.proto, dport: packet.dport, mark: 0,
    origDst: dst, origDport: packet.dport, dnat: false, snat: false,
  };
  if (packet.sport !== undefined) state.sport = packet.sport;

  const initial: WalkState = {
    origin: packet.origin,
    hook: packet.origin === 'local' ? 'OUTPUT' : 'PREROUTING',
    tableIndex: 0,
    loopedBack: false,
    decided: null,
    probability: 1,
    packet: state,
    steps: [],
    masquerade: false,
    stack: [],
    frame: null,
    baseChain: null,
    hops: 0,
  };

  const paths: TracePath[] = [];
  const pending: WalkState[] = [initial];
  for (let s = pending.pop(); s !== undefined; s = pending.pop()) {
    const out = run(rules, s, ctx);
    if (Array.isArray(out)) {
      pending.push(out[1], out[0]);
      if (paths.length + pending.length > MAX_PATHS) throw new Error(`trace: more than ${MAX_PATHS} paths, giving up`);
    } else {
      paths.push(out);
    }
  }
  return summarize(paths);
}
