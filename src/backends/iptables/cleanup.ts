/**
 * Renders the iptables-restore input that removes everything this agent
 * owns, from any table, and nothing else: rules elsewhere that jump into our
 * chains are deleted by their exact saved spec, then our chains are flushed
 * and deleted. Pure.
 */
import { ownedChainsIn } from './names.js';
import type { SavedState } from './saved-state.js';

export function renderCleanup(state: SavedState): string | undefined {
  const lines: string[] = [];
  const isOwnedChain = ownedChainsIn(state.chains);
  for (const [table, chains] of state.chains) {
    const owned = [...chains].filter(isOwnedChain).sort();
    const refs = state.rules.filter((r) => r.table === table && !isOwnedChain(r.chain) && r.target !== undefined && isOwnedChain(r.target));
    if (owned.length === 0 && refs.length === 0) continue;
    lines.push(`*${table}`);
    for (const c of owned) lines.push(`:${c} - [0:0]`);
    for (const r of refs) lines.push(`-D ${r.chain} ${r.spec}`);
    for (const c of owned) lines.push(`-X ${c}`);
    lines.push('COMMIT');
  }
  return lines.length === 0 ? undefined : `${lines.join('\n')}\n`;
}
