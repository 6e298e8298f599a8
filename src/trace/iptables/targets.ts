/**
 * Applies the target of a matched rule to a walk in progress: jumps/gotos,
 * verdicts, NAT rewrites and marks.
 */
import { targetOption, type Chain, type Rule, type Ruleset } from './ruleset.js';
import type { PacketState } from './matchers.js';
import type { TraceStep } from './trace.js';
import {
  formatMark,
  parseIp,
  parseMarkSpec,
  parseNatDestination,
  parsePortRange,
  parseUint32,
  type IpAddress,
} from './values.js';

export interface Frame {
  chain: Chain;
  /** Index of the next rule to evaluate. */
  index: number;
}

/** The part of a path's state that targets read and change. */
export interface Walk {
  probability: number;
  packet: PacketState;
  steps: TraceStep[];
  masquerade: boolean;
  dnat?: { address: string; port: number } | undefined;
  /** Return addresses of `-j` jumps in the current table traversal. */
  stack: Frame[];
  frame: Frame | null;
  /** The built-in chain this table traversal started in (its policy applies on underflow). */
  baseChain: Chain | null;
  /** Jumps and gotos taken in the current table traversal (loop guard for gotos). */
  hops: number;
}

/** CONTINUE: next rule; ACCEPT: this table is done for this hook; RETURN: leave the chain. */
export type TargetOutcome = 'CONTINUE' | 'ACCEPT' | 'DROP' | 'REJECT' | 'RETURN';

export interface TargetContext {
  /** The packet was sent by a local process (REDIRECT goes to loopback). */
  local: boolean;
  localAddresses: IpAddress[];
}

/** Maximum `-j` nesting before the tracer assumes a loop. */
export const MAX_JUMP_DEPTH = 64;
/** Maximum jumps + gotos in one table traversal before the tracer assumes a loop. */
export const MAX_HOPS = 10_000;

const UNMODELLED_TERMINAL = new Set(['QUEUE', 'NFQUEUE', 'NETMAP', 'TPROXY', 'SYNPROXY']);

export function makeStep(rule: Rule, action: string, notes: string[]): TraceStep {
  const st: TraceStep = { table: rule.table, chain: rule.chain, rule: rule.raw, action };
  if (rule.comment !== undefined) st.comment = rule.comment;
  if (notes.length > 0) st.notes = notes;
  return st;
}

function newMark(mark: number, option: string, value: string): number {
  switch (option) {
    case 'set-xmark':
    case 'set-mark': {
      const spec = parseMarkSpec(value);
      return ((mark & ~spec.mask) ^ spec.value) >>> 0;
    }
    case 'or-mark': return (mark | parseUint32(value)) >>> 0;
    case 'and-mark': return (mark & parseUint32(value)) >>> 0;
    case 'xor-mark': return (mark ^ parseUint32(value)) >>> 0;
    default: return mark;
  }
}

function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function rewriteDestination(s: Walk, address: IpAddress, port: number): string {
  s.packet.dst = address;
  s.packet.dport = port;
  s.packet.dnat = true;
  s.dnat = { address: address.toString(), port };
  return formatEndpoint(address.toString(), port);
}

function redirectAddress(s: Walk, ctx: TargetContext): IpAddress {
  const v4 = s.packet.dst.kind() === 'ipv4';
  if (!ctx.local) {
    const own = ctx.localAddresses.find((a) => a.kind() === s.packet.dst.kind());
    if (own !== undefined) return own;
  }
  return parseIp(v4 ? '127.0.0.1' : '::1');
}

function jump(s: Walk, rule: Rule, chain: Chain, kind: 'jump' | 'goto', notes: string[]): TargetOutcome {
  s.hops++;
  if ((kind === 'jump' && s.stack.length >= MAX_JUMP_DEPTH) || s.hops > MAX_HOPS) {
    const why = s.hops > MAX_HOPS ? `more than ${MAX_HOPS} jumps` : `jump depth limit ${MAX_JUMP_DEPTH} exceeded`;
    s.steps.push(makeStep(rule, `DROP (loop: ${why})`, notes));
    return 'DROP';
  }
  if (kind === 'jump' && s.frame !== null) s.stack.push(s.frame);
  s.steps.push(makeStep(rule, `${kind} ${chain.name}`, notes));
  s.frame = { chain, index: 0 };
  return 'CONTINUE';
}

/** Applies `rule`'s target to `s` (the rule matched). `notes` are the match notes to record in the step. */
export function applyTarget(s: Walk, rule: Rule, notes: string[], rules: Ruleset, ctx: TargetContext): TargetOutcome {
  const target = rule.target;
  if (target === null) return 'CONTINUE';
  const push = (action: string, extra: string[] = []): void => {
    s.steps.push(makeStep(rule, action, [...notes, ...extra]));
  };
  const chain = rules.tables.get(rule.table)?.chains.get(target.name);
  if (chain !== undefined) return jump(s, rule, chain, target.kind, notes);

  switch (target.name) {
    case 'ACCEPT':
    case 'DROP':
    case 'RETURN':
      push(target.name);
      return target.name;
    case 'REJECT': {
      const withWhat = targetOption(target, 'reject-with');
      push('REJECT', withWhat === undefined ? [] : [`reject-with ${withWhat}`]);
      return 'REJECT';
    }
    case 'DNAT': {
      const to = parseNatDestination(targetOption(target, 'to-destination') ?? '');
      const shown = rewriteDestination(s, parseIp(to.address), to.port ?? s.packet.dport);
      push(`DNAT ${shown}`, to.note === undefined ? [] : [to.note]);
      return 'ACCEPT';
    }
    case 'REDIRECT': {
      const ports = targetOption(target, 'to-ports');
      const port = ports === undefined ? s.packet.dport : parsePortRange(ports.split('-')[0] ?? '').from;
      push(`REDIRECT ${rewriteDestination(s, redirectAddress(s, ctx), port)}`);
      return 'ACCEPT';
    }
    case 'SNAT':
    case 'MASQUERADE': {
      s.masquerade = true;
      s.packet.snat = true;
      const to = targetOption(target, 'to-source');
      push(to === undefined ? target.name : `${target.name} ${to}`);
      return 'ACCEPT';
    }
    case 'MARK': {
      const option = target.options.find((o) => ['set-xmark', 'set-mark', 'or-mark', 'and-mark', 'xor-mark'].includes(o.name));
      if (option !== undefined) s.packet.mark = newMark(s.packet.mark, option.name, option.args[0] ?? '');
      push(`MARK ${formatMark(s.packet.mark)}`);
      return 'CONTINUE';
    }
    case 'LOG':
    case 'NFLOG':
    case 'ULOG': {
      const prefix = targetOption(target, 'log-prefix') ?? targetOption(target, 'nflog-prefix');
      push(target.name, prefix === undefined ? [] : [`prefix "${prefix}"`]);
      return 'CONTINUE';
    }
    default:
      if (UNMODELLED_TERMINAL.has(target.name)) {
        push(target.name, [`target ${target.name} is not modelled, assumed ACCEPT`]);
        return 'ACCEPT';
      }
      push(target.name, [`target ${target.name} has no effect on this trace`]);
      return 'CONTINUE';
  }
}
