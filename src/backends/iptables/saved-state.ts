/**
 * Reads what matters to the agent out of iptables-save output: which chains
 * exist in each table, and which rules jump into which chain. Pure.
 */
import { isServiceChain, JUMP_RULES, jumpKey } from './names.js';
import type { JumpRule } from './names.js';

export interface SavedRule {
  table: string;
  chain: string;
  /** The rule's spec as saved, without the leading `-A CHAIN`. */
  spec: string;
  /** The `-j`/`-g` target, if any. */
  target?: string;
}

export interface SavedState {
  chains: Map<string, Set<string>>;
  /**
   * The rules, except those of per-service chains (KUBE-SVC-…, KUBE-SEP-…):
   * nearly all of a large ruleset, and never needed (neither a jump from a
   * built-in chain nor a reference from someone else's chain).
   */
  rules: SavedRule[];
}

/** Whether the line at `from` (ending at `end`) is `-A KUBE-SVC-…`, `-A KUBE-SEP-…`, …: a rule of a per-service chain. */
function inServiceChain(text: string, from: number, end: number): boolean {
  if (!text.startsWith('-A KUBE-', from)) return false;
  const sp = text.indexOf(' ', from + 3);
  return isServiceChain(text.slice(from + 3, sp < 0 || sp > end ? end : sp));
}

export function parseSaved(text: string): SavedState {
  const chains = new Map<string, Set<string>>();
  const rules: SavedRule[] = [];
  let table = '';
  // Line by line without splitting: a saved ruleset can be 40 MB.
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let from = start;
    while (from < end && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
    const first = text[from];
    if (first === '-' && inServiceChain(text, from, end)) {
      start = end + 1;
      continue;
    }
    const line = first === '*' || first === ':' || first === '-' ? text.slice(from, end).trim() : '';
    start = end + 1;
    if (line === '') continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      if (!chains.has(table)) chains.set(table, new Set());
    } else if (line.startsWith(':')) {
      chains.get(table)?.add(line.slice(1).split(/\s+/)[0]!);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      const chain = sp < 0 ? rest : rest.slice(0, sp);
      const spec = sp < 0 ? '' : rest.slice(sp + 1);
      const m = /(?:^|\s)-[jg]\s+(\S+)/.exec(spec);
      rules.push({ table, chain, spec, ...(m ? { target: m[1]! } : {}) });
    }
  }
  return { chains, rules };
}

/** The jump rules of JUMP_RULES not present in the saved state. */
export function missingJumps(state: SavedState): JumpRule[] {
  const present = new Set(state.rules.filter((r) => r.target).map((r) => jumpKey({ table: r.table, from: r.chain, to: r.target! })));
  return JUMP_RULES.filter((j) => !present.has(jumpKey(j)));
}
