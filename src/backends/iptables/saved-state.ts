/**
 * Reads what matters to the agent out of iptables-save output: which chains
 * exist in each table, and which rules jump into which chain. Pure.
 */
import { JUMP_RULES, jumpKey } from './names.js';
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
  rules: SavedRule[];
}

export function parseSaved(text: string): SavedState {
  const chains = new Map<string, Set<string>>();
  const rules: SavedRule[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
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
