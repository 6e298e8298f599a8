/**
 * Parser for iptables-restore input and iptables-save output.
 *
 * Lines are applied in order to an initially empty ruleset, the way
 * `iptables-restore --noflush` applies them to empty tables: `*table` opens a
 * table (with all its built-in chains, policy ACCEPT), `:CHAIN POLICY [p:b]`
 * creates a chain or flushes an existing user chain, `-A/-I/-R/-D/-F/-X/-N/-P/-E`
 * edit the state, `COMMIT` closes the table and checks that every jump target
 * exists. Anything iptables-restore would refuse is an IptablesParseError
 * naming the line.
 */
import { tokenizeLine, type Token } from './tokenize.js';
import { parseRuleSpec, ruleSpecKey } from './rulespec.js';
import {
  BUILTIN_CHAINS,
  KNOWN_TARGETS,
  type Chain,
  type Policy,
  type Rule,
  type Ruleset,
  type Table,
} from './ruleset.js';

export type {
  Chain, MatchOption, Policy, Rule, RuleMatch, Ruleset, RuleTarget, Table, TargetOption,
} from './ruleset.js';

export class IptablesParseError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    readonly reason: string,
  ) {
    super(`iptables rules line ${line}: ${reason}: ${text}`);
    this.name = 'IptablesParseError';
  }
}

/** Chain names longer than this are refused by iptables. */
const MAX_CHAIN_NAME = 28;
const NAT_ONLY_TARGETS = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP']);

class RulesetBuilder {
  readonly ruleset: Ruleset = { tables: new Map() };
  private current: Table | null = null;
  private openedAt = 0;
  private lineNo = 0;
  private lineText = '';

  line(text: string, lineNo: number): void {
    this.lineNo = lineNo;
    this.lineText = text.trim();
    const trimmed = this.lineText;
    if (trimmed === '' || trimmed.startsWith('#')) return;
    try {
      if (trimmed.startsWith('*')) this.openTable(trimmed.slice(1).trim());
      else if (trimmed === 'COMMIT') this.commit();
      else if (trimmed.startsWith(':')) this.declareChain(tokenizeLine(trimmed.slice(1)));
      else this.command(tokenizeLine(trimmed));
    } catch (err) {
      if (err instanceof IptablesParseError) throw err;
      throw new IptablesParseError(lineNo, this.lineText, err instanceof Error ? err.message : String(err));
    }
  }

  finish(): void {
    if (this.current !== null) {
      throw new IptablesParseError(this.openedAt, `*${this.current.name}`, 'table is never committed (COMMIT missing)');
    }
  }

  private openTable(name: string): void {
    if (this.current !== null) throw new Error(`COMMIT expected before opening a new table (table ${this.current.name} is still open)`);
    const builtins = BUILTIN_CHAINS[name];
    if (builtins === undefined) throw new Error(`unknown table "${name}"`);
    let table = this.ruleset.tables.get(name);
    if (table === undefined) {
      table = { name, chains: new Map() };
      for (const chain of builtins) table.chains.set(chain, { name: chain, builtin: true, policy: 'ACCEPT', rules: [] });
      this.ruleset.tables.set(name, table);
    }
    this.current = table;
    this.openedAt = this.lineNo;
  }

  private table(): Table {
    if (this.current === null) throw new Error('not inside a table (a "*table" line must come first)');
    return this.current;
  }

  private commit(): void {
    const table = this.table();
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) this.checkTarget(table, rule);
    }
    this.current = null;
  }

  private checkTarget(table: Table, rule: Rule): void {
    const target = rule.target;
    if (target === null) return;
    const fail = (reason: string): never => {
      throw new IptablesParseError(rule.line, rule.raw, reason);
    };
    const chain = table.chains.get(target.name);
    if (chain !== undefined) {
      if (chain.builtin) fail(`cannot jump to built-in chain ${target.name}`);
      return;
    }
    if (target.kind === 'goto') fail(`goto target chain "${target.name}" does not exist in table ${table.name}`);
    if (!KNOWN_TARGETS.has(target.name)) fail(`chain or target "${target.name}" does not exist in table ${table.name}`);
    if (NAT_ONLY_TARGETS.has(target.name) && table.name !== 'nat') fail(`target ${target.name} is only valid in the nat table`);
  }

  private chain(name: string | undefined): Chain {
    if (name === undefined) throw new Error('chain name missing');
    const chain = this.table().chains.get(name);
    if (chain === undefined) throw new Error(`chain "${name}" does not exist in table ${this.table().name}`);
    return chain;
  }

  private declareChain(tokens: Token[]): void {
    const table = this.table();
    const [nameTok, policyTok, countersTok, extra] = tokens;
    if (nameTok === undefined || policyTok === undefined || extra !== undefined) {
      throw new Error('chain declaration must be ":NAME POLICY [packets:bytes]"');
    }
    if (countersTok !== undefined && !/^\[\d+:\d+\]$/.test(countersTok.text)) throw new Error(`invalid counters "${countersTok.text}"`);
    const name = nameTok.text;
    const policy = policyTok.text;
    const existing = table.chains.get(name);
    if (existing?.builtin === true) {
      if (policy !== 'ACCEPT' && policy !== 'DROP') throw new Error(`built-in chain ${name} needs policy ACCEPT or DROP, not "${policy}"`);
      existing.policy = policy;
      return;
    }
    if (policy !== '-') throw new Error(`user-defined chain ${name} cannot have a policy ("${policy}"), use "-"`);
    if (existing !== undefined) {
      existing.rules = [];
      return;
    }
    this.createChain(table, name);
  }

  private createChain(table: Table, name: string): void {
    if (name === '' || name.startsWith('-') || name === '!') throw new Error(`invalid chain name "${name}"`);
    if (name.length > MAX_CHAIN_NAME) throw new Error(`chain name "${name}" is longer than ${MAX_CHAIN_NAME} characters`);
    if (KNOWN_TARGETS.has(name)) throw new Error(`chain name "${name}" collides with a target name`);
    table.chains.set(name, { name, builtin: false, policy: null, rules: [] });
  }

  private newRule(chain: Chain, tokens: Token[]): Rule {
    const spec = parseRuleSpec(tokens);
    const rule: Rule = {
      table: this.table().name,
      chain: chain.name,
      raw: this.lineText,
      line: this.lineNo,
      matches: spec.matches,
      target: spec.target,
    };
    if (spec.comment !== undefined) rule.comment = spec.comment;
    return rule;
  }

  private command(all: Token[]): void {
    const tokens = all[0] !== undefined && /^\[\d+:\d+\]$/.test(all[0].text) ? all.slice(1) : all;
    const [cmdTok, chainTok] = tokens;
    if (cmdTok === undefined || cmdTok.quoted) throw new Error('cannot parse line');
    const rest = tokens.slice(2);
    const table = this.table();
    switch (cmdTok.text) {
      case '-A': case '--append': {
        const chain = this.chain(chainTok?.text);
        chain.rules.push(this.newRule(chain, rest));
        return;
      }
      case '-I': case '--insert': case '-R': case '--replace': {
        const chain = this.chain(chainTok?.text);
        const replace = cmdTok.text === '-R' || cmdTok.text === '--replace';
        const numTok = rest[0];
        const hasNum = numTok !== undefined && !numTok.quoted && /^\d+$/.test(numTok.text);
        if (replace && !hasNum) throw new Error('-R needs a rule number');
        const pos = hasNum ? Number(numTok.text) : 1;
        const max = replace ? chain.rules.length : chain.rules.length + 1;
        if (pos < 1 || pos > max) throw new Error(`rule position ${pos} is out of range for chain ${chain.name} (1..${max})`);
        const rule = this.newRule(chain, hasNum ? rest.slice(1) : rest);
        chain.rules.splice(pos - 1, replace ? 1 : 0, rule);
        return;
      }
      case '-D': case '--delete': {
        const chain = this.chain(chainTok?.text);
        const numTok = rest[0];
        if (rest.length === 1 && numTok !== undefined && /^\d+$/.test(numTok.text)) {
          const pos = Number(numTok.text);
          if (pos < 1 || pos > chain.rules.length) throw new Error(`no rule number ${pos} in chain ${chain.name}`);
          chain.rules.splice(pos - 1, 1);
          return;
        }
        const key = ruleSpecKey(parseRuleSpec(rest));
        const index = chain.rules.findIndex((r) => ruleSpecKey(r) === key);
        if (index < 0) throw new Error(`no matching rule to delete in chain ${chain.name}`);
        chain.rules.splice(index, 1);
        return;
      }
      case '-F': case '--flush':
        this.noExtra(rest);
        if (chainTok === undefined) for (const c of table.chains.values()) c.rules = [];
        else this.chain(chainTok.text).rules = [];
        return;
      case '-X': case '--delete-chain':
        this.noExtra(rest);
        if (chainTok === undefined) {
          for (const c of [...table.chains.values()]) if (!c.builtin) this.deleteChain(table, c);
        } else {
          this.deleteChain(table, this.chain(chainTok.text));
        }
        return;
      case '-N': case '--new-chain':
        this.noExtra(rest);
        if (chainTok === undefined) throw new Error('chain name missing');
        if (table.chains.has(chainTok.text)) throw new Error(`chain "${chainTok.text}" already exists`);
        this.createChain(table, chainTok.text);
        return;
      case '-P': case '--policy': {
        const chain = this.chain(chainTok?.text);
        const policy = rest[0]?.text;
        this.noExtra(rest.slice(1));
        if (!chain.builtin) throw new Error(`only built-in chains have a policy, ${chain.name} is user-defined`);
        if (policy !== 'ACCEPT' && policy !== 'DROP') throw new Error(`policy must be ACCEPT or DROP, not "${policy ?? ''}"`);
        chain.policy = policy satisfies Policy;
        return;
      }
      case '-E': case '--rename-chain':
        this.renameChain(table, this.chain(chainTok?.text), rest);
        return;
      case '-Z': case '--zero':
        return;
      default:
        throw new Error(`unknown command "${cmdTok.text}"`);
    }
  }

  private noExtra(rest: Token[]): void {
    const first = rest[0];
    if (first !== undefined) throw new Error(`unexpected "${first.text}"`);
  }

  private deleteChain(table: Table, chain: Chain): void {
    if (chain.builtin) throw new Error(`cannot delete built-in chain ${chain.name}`);
    if (chain.rules.length > 0) throw new Error(`cannot delete chain ${chain.name}: it still has ${chain.rules.length} rule(s)`);
    for (const other of table.chains.values()) {
      const user = other.rules.find((r) => r.target?.name === chain.name);
      if (user !== undefined) throw new Error(`cannot delete chain ${chain.name}: referenced by line ${user.line} (${user.raw})`);
    }
    table.chains.delete(chain.name);
  }

  private renameChain(table: Table, chain: Chain, rest: Token[]): void {
    const newName = rest[0]?.text;
    this.noExtra(rest.slice(1));
    if (newName === undefined) throw new Error('new chain name missing');
    if (chain.builtin) throw new Error(`cannot rename built-in chain ${chain.name}`);
    if (table.chains.has(newName)) throw new Error(`chain "${newName}" already exists`);
    const oldName = chain.name;
    this.createChain(table, newName);
    const renamed: Chain = { ...chain, name: newName, rules: chain.rules.map((r) => ({ ...r, chain: newName })) };
    const entries = [...table.chains.entries()]
      .filter(([n]) => n !== newName)
      .map(([n, c]): [string, Chain] => (n === oldName ? [newName, renamed] : [n, c]));
    table.chains = new Map(entries);
    for (const c of table.chains.values()) {
      for (const r of c.rules) if (r.target?.name === oldName) r.target.name = newName;
    }
  }
}

/** Parses iptables-restore input or iptables-save output. Throws IptablesParseError on a bad line. */
export function parseIptablesRules(text: string): Ruleset {
  const builder = new RulesetBuilder();
  text.split('\n').forEach((line, index) => builder.line(line, index + 1));
  builder.finish();
  return builder.ruleset;
}
