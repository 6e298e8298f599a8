/**
 * Parser of nftables rulesets, in both forms the tracer meets:
 *
 * - the `nft -f` input kube-proxy writes: one command a line (`add table ip
 *   kube-proxy`, `add chain …`, `add rule …`, `add map …`, `add element …`,
 *   `flush chain`, `delete chain`, `delete element`, `insert rule`, …), applied
 *   in order to the parsed state;
 * - the output of `nft list ruleset` / `nft list table …` (also valid `nft -f`
 *   input): `table ip kube-proxy { chain … { type nat hook prerouting priority
 *   dstnat; policy accept; rules… } set … { type …; elements = { … } } }`,
 *   with or without `-a` handles.
 */
import { Cursor, NftTokenizeError, tokenize, type Token } from './tokenize.js';
import {
  FAMILIES, HOOKS, tableKey,
  type BaseChainSpec, type Family, type Hook, type NftChain, type NftRule, type NftRuleset, type NftSet, type NftTable,
} from './ruleset.js';
import { describeNext, expectName, expectPunct, fail, NftSyntaxError, parseElements } from './elements.js';
import { parseExpr, typesOf } from './expressions.js';
import { parseRuleStatements } from './rule.js';
import { datatypeFromName, type ValueType } from './values.js';
import { validateRuleset } from './validate.js';

export class NftParseError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    readonly reason: string,
  ) {
    super(`nftables ruleset line ${line}: ${reason}: ${text}`);
    this.name = 'NftParseError';
  }
}

/** Named priorities of the ip, ip6 and inet families. */
const PRIORITIES: Readonly<Record<string, number>> = {
  raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100,
};

const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'flush', 'list', 'reset', 'rename']);
const OTHER_OBJECTS = new Set([
  'counter', 'quota', 'limit', 'ct', 'flowtable', 'secmark', 'synproxy', 'tunnel', 'counters', 'quotas', 'limits',
]);

class Parser {
  readonly rs: NftRuleset = { tables: new Map() };
  readonly cur: Cursor;

  constructor(text: string, tokens: Token[]) {
    this.cur = new Cursor(tokens, text);
  }

  /** True at a statement end: newline, `;`, `}` or the end of input. */
  private atStatementEnd(): boolean {
    const t = this.cur.peek();
    return t === undefined || t.kind === 'newline' || (t.kind === 'punct' && (t.text === ';' || t.text === '}'));
  }

  private expectStatementEnd(): void {
    while (this.cur.peek()?.kind === 'handle') this.cur.next();
    if (!this.atStatementEnd()) fail(this.cur, `unexpected "${this.cur.peek()?.text ?? ''}"`);
  }

  /** Skips to the end of the statement, over balanced braces. */
  private skipStatement(): void {
    let depth = 0;
    for (;;) {
      const t = this.cur.peek();
      if (t === undefined) return;
      if (depth === 0 && this.atStatementEnd()) return;
      if (t.kind === 'punct' && t.text === '{') depth++;
      if (t.kind === 'punct' && t.text === '}') depth--;
      this.cur.next();
    }
  }

  private skipSeparators(): number | undefined {
    let handle: number | undefined;
    for (;;) {
      const t = this.cur.peek();
      if (t === undefined) return handle;
      if (t.kind === 'newline' || (t.kind === 'punct' && t.text === ';')) this.cur.next();
      else if (t.kind === 'handle') {
        handle = Number(t.text);
        this.cur.next();
      } else return handle;
    }
  }

  parse(): NftRuleset {
    for (;;) {
      this.skipSeparators();
      if (this.cur.atEnd()) return this.rs;
      const w = this.cur.word();
      if (w === 'table') {
        this.cur.next();
        this.tableCommand('add');
      } else if (w !== undefined && VERBS.has(w)) {
        this.cur.next();
        this.command(w);
      } else if (w === 'define' || w === 'include') {
        fail(this.cur, `"${w}" is not supported`);
      } else {
        fail(this.cur, `unknown command "${this.cur.peek()?.text ?? ''}"`);
      }
      this.expectStatementEnd();
    }
  }

  private family(): Family {
    const w = this.cur.word();
    const t1 = this.cur.peek(1);
    if (w !== undefined && (FAMILIES as readonly string[]).includes(w) && (t1?.kind === 'word' || t1?.kind === 'string')) {
      this.cur.next();
      return w as Family;
    }
    return 'ip';
  }

  private table(family: Family, name: string): NftTable {
    const t = this.rs.tables.get(tableKey(family, name));
    if (t === undefined) fail(this.cur, `table ${family} ${name} does not exist`);
    return t;
  }

  /** `[family] table`, for commands on objects inside a table. */
  private tableRef(): NftTable {
    const family = this.family();
    return this.table(family, expectName(this.cur, 'a table name'));
  }

  private chain(table: NftTable, name: string): NftChain {
    const c = table.chains.get(name);
    if (c === undefined) fail(this.cur, `chain ${name} does not exist in table ${table.family} ${table.name}`);
    return c;
  }

  private set(table: NftTable, name: string): NftSet {
    const s = table.sets.get(name);
    if (s === undefined) fail(this.cur, `set ${name} does not exist in table ${table.family} ${table.name}`);
    return s;
  }

  private command(verb: string): void {
    if (verb === 'list' || verb === 'reset' || verb === 'rename') {
      this.skipStatement();
      return;
    }
    const object = this.cur.word();
    if (object === undefined) fail(this.cur, `expected an object after ${verb}`);
    this.cur.next();
    switch (object) {
      case 'table': this.tableCommand(verb); return;
      case 'chain': this.chainCommand(verb); return;
      case 'rule': this.ruleCommand(verb); return;
      case 'set': case 'map': this.setCommand(verb, object === 'map'); return;
      case 'element': this.elementCommand(verb); return;
      case 'ruleset': {
        if (verb !== 'flush') fail(this.cur, `${verb} ruleset is not supported`);
        const family = this.cur.word();
        for (const [key, t] of this.rs.tables) if (family === undefined || t.family === family) this.rs.tables.delete(key);
        if (family !== undefined) this.cur.next();
        return;
      }
      default:
        if (OTHER_OBJECTS.has(object)) {
          this.skipStatement();
          return;
        }
        fail(this.cur, `unknown object "${object}"`);
    }
  }

  private tableCommand(verb: string): void {
    const family = this.family();
    const tableName = this.cur.word() === 'handle' ? null : expectName(this.cur, 'a table name');
    if (tableName === null) {
      this.cur.next();
      const handle = Number(expectName(this.cur, 'a handle'));
      const found = [...this.rs.tables.values()].find((t) => t.family === family && t.handle === handle);
      if (found === undefined && verb === 'delete') fail(this.cur, `no table with handle ${handle}`);
      if (found !== undefined) this.rs.tables.delete(tableKey(found.family, found.name));
      return;
    }
    const key = tableKey(family, tableName);
    const existing = this.rs.tables.get(key);
    switch (verb) {
      case 'add': case 'create': {
        if (existing !== undefined && verb === 'create') fail(this.cur, `table ${key} already exists`);
        let table = existing;
        if (table === undefined) {
          table = { family, name: tableName, chains: new Map(), sets: new Map(), handle: 1, lastHandle: 1 };
          this.rs.tables.set(key, table);
        }
        const handle = this.skipHandle();
        if (handle !== undefined) table.handle = handle;
        if (this.cur.isPunct('{')) this.tableBody(table);
        return;
      }
      case 'delete': case 'destroy':
        if (existing === undefined && verb === 'delete') fail(this.cur, `table ${key} does not exist`);
        this.rs.tables.delete(key);
        return;
      case 'flush':
        if (existing === undefined) fail(this.cur, `table ${key} does not exist`);
        for (const c of existing.chains.values()) c.rules = [];
        return;
      default:
        fail(this.cur, `${verb} table is not supported`);
    }
  }

  private skipHandle(): number | undefined {
    let handle: number | undefined;
    while (this.cur.peek()?.kind === 'handle') handle = Number(this.cur.next()?.text);
    return handle;
  }

  private nextHandle(table: NftTable, given: number | undefined): number {
    if (given !== undefined) {
      table.lastHandle = Math.max(table.lastHandle, given);
      return given;
    }
    return ++table.lastHandle;
  }

  private tableBody(table: NftTable): void {
    expectPunct(this.cur, '{');
    const own = this.skipSeparators();
    if (own !== undefined) table.handle = own;
    for (;;) {
      this.skipSeparators();
      if (this.cur.isPunct('}')) {
        this.cur.next();
        return;
      }
      const w = this.cur.word();
      if (w === undefined) fail(this.cur, `unexpected "${this.cur.peek()?.text ?? 'end of input'}" in table ${table.name}`);
      this.cur.next();
      if (w === 'comment') table.comment = expectName(this.cur, 'a comment string');
      else if (w === 'flags') this.skipStatement();
      else if (w === 'chain') {
        const chain = this.defineChain(table, expectName(this.cur, 'a chain name'), false);
        const handle = this.skipHandle();
        if (handle !== undefined) chain.handle = handle;
        if (this.cur.isPunct('{')) this.chainBody(table, chain);
      } else if (w === 'set' || w === 'map') {
        const line = this.cur.line();
        const set = this.defineSet(table, expectName(this.cur, `a ${w} name`), w === 'map', line, false);
        const handle = this.skipHandle();
        if (handle !== undefined) set.handle = handle;
        if (this.cur.isPunct('{')) this.setBody(set);
      } else if (OTHER_OBJECTS.has(w)) this.skipStatement();
      else fail(this.cur, `unknown object "${w}" in table ${table.name}`);
      this.expectStatementEnd();
    }
  }

  private defineChain(table: NftTable, name: string, create: boolean): NftChain {
    const existing = table.chains.get(name);
    if (existing !== undefined) {
      if (create) fail(this.cur, `chain ${name} already exists`);
      return existing;
    }
    const chain: NftChain = { name, base: null, rules: [], handle: this.nextHandle(table, undefined) };
    table.chains.set(name, chain);
    return chain;
  }

  private chainCommand(verb: string): void {
    const table = this.tableRef();
    if (this.cur.word() === 'handle') {
      this.cur.next();
      const handle = Number(expectName(this.cur, 'a chain handle'));
      const chain = [...table.chains.values()].find((c) => c.handle === handle);
      if (chain === undefined) fail(this.cur, `no chain with handle ${handle}`);
      this.chainVerb(verb, table, chain.name);
      return;
    }
    this.chainVerb(verb, table, expectName(this.cur, 'a chain name'));
  }

  private chainVerb(verb: string, table: NftTable, name: string): void {
    switch (verb) {
      case 'add': case 'create': {
        const chain = this.defineChain(table, name, verb === 'create');
        if (this.cur.isPunct('{')) this.chainBody(table, chain);
        return;
      }
      case 'delete': case 'destroy': {
        const chain = table.chains.get(name);
        if (chain === undefined) {
          if (verb === 'delete') fail(this.cur, `chain ${name} does not exist in table ${table.family} ${table.name}`);
          return;
        }
        if (chain.rules.length > 0) fail(this.cur, `cannot delete chain ${name}: it still has ${chain.rules.length} rule(s)`);
        table.chains.delete(name);
        return;
      }
      case 'flush':
        this.chain(table, name).rules = [];
        return;
      default:
        fail(this.cur, `${verb} chain is not supported`);
    }
  }

  private chainBody(table: NftTable, chain: NftChain): void {
    expectPunct(this.cur, '{');
    const own = this.skipSeparators();
    if (own !== undefined) chain.handle = own;
    for (;;) {
      this.skipSeparators();
      if (this.cur.isPunct('}')) {
        this.cur.next();
        return;
      }
      const w = this.cur.word();
      if (w === 'type' && this.cur.word(2) === 'hook') {
        this.cur.next();
        this.baseChain(chain);
      } else if (w === 'policy') {
        this.cur.next();
        this.policy(chain);
      } else if (w === 'comment' && this.cur.peek(1)?.kind === 'string' && this.peekIsStatementEnd(2)) {
        this.cur.next();
        chain.comment = expectName(this.cur, 'a comment string');
      } else if (w === 'devices' || w === 'device') {
        this.skipStatement();
      } else {
        this.addRule(table, chain, this.collectRule(), { kind: 'append' });
      }
      this.expectStatementEnd();
    }
  }

  private peekIsStatementEnd(offset: number): boolean {
    const t = this.cur.peek(offset);
    return t === undefined || t.kind === 'newline' || (t.kind === 'punct' && (t.text === ';' || t.text === '}'));
  }

  private baseChain(chain: NftChain): void {
    const type = expectName(this.cur, 'a chain type');
    if (type !== 'filter' && type !== 'nat' && type !== 'route') fail(this.cur, `unknown chain type "${type}"`);
    if (this.cur.word() !== 'hook') fail(this.cur, 'expected "hook"');
    this.cur.next();
    const hook = expectName(this.cur, 'a hook name');
    if (!(HOOKS as readonly string[]).includes(hook)) fail(this.cur, `unknown hook "${hook}"`);
    if (this.cur.word() === 'device') {
      this.cur.next();
      expectName(this.cur, 'a device name');
    }
    if (this.cur.word() !== 'priority') fail(this.cur, `expected "priority"${describeNext(this.cur)}`);
    this.cur.next();
    let text = '';
    while (!this.atStatementEnd()) text += this.cur.next()?.text ?? '';
    const m = /^([a-z]+)?([+-]?\d+)?$/.exec(text);
    const named = m?.[1];
    const base = named === undefined ? 0 : PRIORITIES[named];
    if (m === null || text === '' || base === undefined || (named === undefined && m[2] === undefined)) fail(this.cur, `invalid priority "${text}"`);
    chain.base = { type, hook: hook as Hook, priority: base + Number(m[2] ?? 0), policy: chain.base?.policy ?? 'accept' };
    if (this.cur.isPunct(';')) this.cur.next();
    this.cur.skipNewlines();
    if (this.cur.word() === 'policy') {
      this.cur.next();
      this.policy(chain);
    }
  }

  private policy(chain: NftChain): void {
    const p = expectName(this.cur, 'a policy');
    if (p !== 'accept' && p !== 'drop') fail(this.cur, `invalid policy "${p}"`);
    if (chain.base === null) fail(this.cur, `chain ${chain.name} is not a base chain and cannot have a policy`);
    chain.base.policy = p;
    if (this.cur.isPunct(';')) this.cur.next();
  }

  /** The tokens of one rule (to the end of the statement), with the `# handle` annotation removed. */
  private collectRule(): { tokens: Token[]; handle?: number } {
    const tokens: Token[] = [];
    let handle: number | undefined;
    let depth = 0;
    for (;;) {
      const t = this.cur.peek();
      if (t === undefined) break;
      if (depth === 0 && this.atStatementEnd()) break;
      if (t.kind === 'punct' && t.text === '{') depth++;
      if (t.kind === 'punct' && t.text === '}') depth--;
      this.cur.next();
      if (t.kind === 'handle') handle = Number(t.text);
      else if (t.kind !== 'newline') tokens.push(t);
    }
    return handle === undefined ? { tokens } : { tokens, handle };
  }

  private addRule(
    table: NftTable, chain: NftChain, body: { tokens: Token[]; handle?: number },
    where: { kind: 'append' | 'insert'; handle?: number; index?: number },
  ): NftRule {
    const first = body.tokens[0];
    const last = body.tokens[body.tokens.length - 1];
    if (first === undefined || last === undefined) fail(this.cur, 'empty rule');
    const sub = new Cursor(body.tokens, this.cur.source);
    const parsed = parseRuleStatements(sub);
    const rule: NftRule = {
      table: `${table.family} ${table.name}`,
      chain: chain.name,
      raw: this.cur.source.slice(first.start, last.end),
      stmts: parsed.stmts,
      handle: this.nextHandle(table, body.handle),
      line: first.line,
    };
    if (parsed.comment !== undefined) rule.comment = parsed.comment;
    let at = where.kind === 'append' ? chain.rules.length : 0;
    if (where.handle !== undefined) {
      const i = chain.rules.findIndex((r) => r.handle === where.handle);
      if (i < 0) fail(this.cur, `no rule with handle ${where.handle} in chain ${chain.name}`);
      at = where.kind === 'append' ? i + 1 : i;
    } else if (where.index !== undefined) {
      if (where.index >= chain.rules.length) fail(this.cur, `rule index ${where.index} is out of range`);
      at = where.kind === 'append' ? where.index + 1 : where.index;
    }
    chain.rules.splice(at, 0, rule);
    return rule;
  }

  private ruleCommand(verb: string): void {
    const table = this.tableRef();
    const chain = this.chain(table, expectName(this.cur, 'a chain name'));
    let handle: number | undefined;
    let index: number | undefined;
    const w = this.cur.word();
    if (w === 'handle' || w === 'position' || w === 'index') {
      this.cur.next();
      const n = Number(expectName(this.cur, `a number after ${w}`));
      if (!Number.isInteger(n)) fail(this.cur, `invalid ${w}`);
      if (w === 'index') index = n;
      else handle = n;
    }
    switch (verb) {
      case 'add': case 'create':
        this.addRule(table, chain, this.collectRule(), { kind: 'append', ...opt(handle, index) });
        return;
      case 'insert':
        this.addRule(table, chain, this.collectRule(), { kind: 'insert', ...opt(handle, index) });
        return;
      case 'replace': {
        if (handle === undefined) fail(this.cur, 'replace rule needs a handle');
        const i = chain.rules.findIndex((r) => r.handle === handle);
        if (i < 0) fail(this.cur, `no rule with handle ${handle} in chain ${chain.name}`);
        const rule = this.addRule(table, chain, this.collectRule(), { kind: 'append', handle });
        chain.rules.splice(i, 1);
        rule.handle = handle;
        return;
      }
      case 'delete': case 'destroy': {
        if (handle === undefined) fail(this.cur, 'delete rule needs a handle');
        const i = chain.rules.findIndex((r) => r.handle === handle);
        if (i < 0 && verb === 'delete') fail(this.cur, `no rule with handle ${handle} in chain ${chain.name}`);
        if (i >= 0) chain.rules.splice(i, 1);
        return;
      }
      default:
        fail(this.cur, `${verb} rule is not supported`);
    }
  }

  private defineSet(table: NftTable, name: string, isMap: boolean, line: number, create: boolean): NftSet {
    const existing = table.sets.get(name);
    if (existing !== undefined) {
      if (create) fail(this.cur, `set ${name} already exists`);
      if (existing.isMap !== isMap) fail(this.cur, `${name} is a ${existing.isMap ? 'map' : 'set'}`);
      return existing;
    }
    const set: NftSet = { name, isMap, keyTypes: [], flags: [], elements: [], handle: this.nextHandle(table, undefined), dynamic: false, line };
    table.sets.set(name, set);
    return set;
  }

  private setCommand(verb: string, isMap: boolean): void {
    const table = this.tableRef();
    const line = this.cur.line();
    const name = expectName(this.cur, `a ${isMap ? 'map' : 'set'} name`);
    switch (verb) {
      case 'add': case 'create': {
        const fresh = !table.sets.has(name);
        const set = this.defineSet(table, name, isMap, line, verb === 'create');
        if (this.cur.isPunct('{')) this.setBody(set);
        if (fresh && set.keyTypes.length === 0) fail(this.cur, `${isMap ? 'map' : 'set'} ${name} needs a type`);
        return;
      }
      case 'delete': case 'destroy':
        if (!table.sets.has(name) && verb === 'delete') this.set(table, name);
        table.sets.delete(name);
        return;
      case 'flush':
        this.set(table, name).elements = [];
        return;
      default:
        fail(this.cur, `${verb} ${isMap ? 'map' : 'set'} is not supported`);
    }
  }

  private setBody(set: NftSet): void {
    expectPunct(this.cur, '{');
    const own = this.skipSeparators();
    if (own !== undefined) set.handle = own;
    for (;;) {
      this.skipSeparators();
      if (this.cur.isPunct('}')) {
        this.cur.next();
        return;
      }
      const w = this.cur.word();
      if (w === undefined) fail(this.cur, `unexpected "${this.cur.peek()?.text ?? 'end of input'}" in set ${set.name}`);
      this.cur.next();
      switch (w) {
        case 'type': this.setType(set); break;
        case 'typeof': this.setTypeof(set); break;
        case 'flags':
          set.flags = [expectName(this.cur, 'a set flag')];
          while (this.cur.isPunct(',')) {
            this.cur.next();
            set.flags.push(expectName(this.cur, 'a set flag'));
          }
          break;
        case 'timeout': case 'gc-interval': case 'size': case 'policy':
          expectName(this.cur, `a value after ${w}`);
          break;
        case 'auto-merge': case 'counter':
          break;
        case 'comment':
          set.comment = expectName(this.cur, 'a comment string');
          break;
        case 'elements':
          if (this.cur.word() !== '=') fail(this.cur, 'expected "=" after elements');
          this.cur.next();
          this.addElements(set, 'add');
          break;
        default:
          fail(this.cur, `unknown set property "${w}"`);
      }
      this.expectStatementEnd();
    }
  }

  private setType(set: NftSet): void {
    const keys: ValueType[] = [datatypeFromName(expectName(this.cur, 'a datatype'))];
    while (this.cur.word() === '.') {
      this.cur.next();
      keys.push(datatypeFromName(expectName(this.cur, 'a datatype')));
    }
    set.keyTypes = keys;
    if (this.cur.word() === ':') {
      if (!set.isMap) fail(this.cur, `set ${set.name} cannot have a data type; use a map`);
      this.cur.next();
      const data = [datatypeFromName(expectName(this.cur, 'a data type'))];
      while (this.cur.word() === '.') {
        this.cur.next();
        data.push(datatypeFromName(expectName(this.cur, 'a data type')));
      }
      this.setData(set, data);
    } else if (set.isMap) {
      fail(this.cur, `map ${set.name} needs "type KEY : DATA"`);
    }
  }

  private setTypeof(set: NftSet): void {
    const key = parseExpr(this.cur);
    if (key === null) fail(this.cur, `unsupported typeof expression${describeNext(this.cur)}`);
    set.keyTypes = typesOf(key);
    if (this.cur.word() === ':') {
      this.cur.next();
      if (this.cur.word() === 'verdict') {
        this.cur.next();
        set.dataType = 'verdict';
      } else {
        const data = parseExpr(this.cur);
        if (data === null) fail(this.cur, `unsupported typeof data expression${describeNext(this.cur)}`);
        this.setData(set, typesOf(data));
      }
    }
  }

  /** Records a data map's data types (`ip daddr . th dport` → ipv4_addr, inet_service). */
  private setData(set: NftSet, types: ValueType[]): void {
    set.dataType = types[0] ?? 'unknown';
    if (set.dataType === 'verdict') return;
    set.dataTypes = types;
  }

  private addElements(set: NftSet, verb: 'add' | 'delete' | 'destroy'): void {
    const value = verb !== 'add' ? 'none' : !set.isMap ? 'none' : set.dataType === 'verdict' ? 'verdict' : 'data';
    const elements = parseElements(this.cur, set.keyTypes, value, value === 'data' ? set.dataTypes : []);
    for (const e of elements) {
      const i = set.elements.findIndex((x) => x.keyText === e.keyText);
      if (verb === 'add') {
        if (i >= 0) set.elements[i] = e;
        else set.elements.push(e);
      } else if (i >= 0) {
        set.elements.splice(i, 1);
      } else if (verb === 'delete') {
        fail(this.cur, `element ${e.keyText} is not in ${set.name}`);
      }
    }
  }

  private elementCommand(verb: string): void {
    const table = this.tableRef();
    const set = this.set(table, expectName(this.cur, 'a set name'));
    if (verb === 'add' || verb === 'create') this.addElements(set, 'add');
    else if (verb === 'delete' || verb === 'destroy') this.addElements(set, verb);
    else fail(this.cur, `${verb} element is not supported`);
  }
}

function opt(handle: number | undefined, index: number | undefined): { handle?: number; index?: number } {
  if (handle !== undefined) return { handle };
  if (index !== undefined) return { index };
  return {};
}

/**
 * Parses `nft -f` input or `nft list` output into tables, chains, rules, sets and maps.
 * Throws NftParseError (with the line number and text) on anything nft would refuse or the
 * tracer cannot represent.
 */
export function parseNftRuleset(text: string): NftRuleset {
  const lines = text.split('\n');
  const error = (line: number, reason: string): NftParseError => new NftParseError(line, (lines[line - 1] ?? '').trim(), reason);
  let tokens: Token[];
  try {
    tokens = tokenize(text);
  } catch (err) {
    if (err instanceof NftTokenizeError) throw error(err.line, err.message);
    throw err;
  }
  try {
    const rs = new Parser(text, tokens).parse();
    validateRuleset(rs);
    return rs;
  } catch (err) {
    if (err instanceof NftSyntaxError) throw error(err.line, err.message);
    throw err;
  }
}

export type { BaseChainSpec };
