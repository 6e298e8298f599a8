/** A fake iptables for tests that need no root: records restore inputs, can fail on demand. */
import { RestoreError } from '../../src/backends/iptables/tool.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import type { IptablesTool } from '../../src/backends/iptables/tool.js';

export interface FakeIptables extends IptablesTool {
  /** Every input applied, in order. */
  inputs: string[];
  /** The next n restore calls fail (as iptables-restore does: line 3 of the input). */
  failNext: number;
  /** What save() returns. */
  saved: string;
  /** Chains reported missing by chainExists (`table/CHAIN`). */
  missing: Set<string>;
  /**
   * The rules the kernel would hold after every input so far (partial syncs
   * are not self-contained), as iptables-restore text of all our chains.
   */
  current(): string;
}

export function fakeIptables(): FakeIptables {
  const tool: FakeIptables = {
    inputs: [],
    failNext: 0,
    saved: '',
    missing: new Set(),
    async save() {
      return tool.saved;
    },
    async restore(input: string) {
      if (tool.failNext > 0) {
        tool.failNext--;
        const line = 3;
        const text = input.split('\n')[line - 1];
        throw new RestoreError(`iptables-restore failed: line ${line} failed at input line ${line}: ${text}`, `iptables-restore: line ${line} failed`, line, text);
      }
      tool.inputs.push(input);
    },
    async chainExists(table: string, chain: string) {
      return !tool.missing.has(`${table}/${chain}`);
    },
    current() {
      if (tool.inputs.length === 0) return '';
      const rs = parseIptablesRules(tool.inputs.join('\n'));
      const out: string[] = [];
      for (const [tn, table] of rs.tables) {
        out.push(`*${tn}`);
        for (const chain of table.chains.values()) if (!chain.builtin) out.push(`:${chain.name} - [0:0]`);
        for (const chain of table.chains.values()) for (const r of chain.rules) out.push(r.raw.startsWith('-I ') ? r.raw.replace(/^-I /, '-A ') : r.raw);
        out.push('COMMIT');
      }
      return `${out.join('\n')}\n`;
    },
  };
  return tool;
}
