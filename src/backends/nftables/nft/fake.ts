/**
 * An in-memory nftables for unit tests: applies the same Transaction objects
 * `nft -f -` would, with the kernel's rules where they matter to us:
 *
 * - a transaction is atomic: on the first failing operation nothing changes;
 * - `add` of something that exists is a no-op (a chain or set re-declared
 *   with another type, hook or priority is an error); `create` of it is an
 *   error; `delete` / `flush` of something missing is an error, `destroy`
 *   is not;
 * - a rule's `jump` / `goto` targets and `@set` references must exist; a
 *   chain still referenced (by a rule elsewhere or by a map element) cannot
 *   be deleted, nor a set a rule refers to; deleting a chain deletes its
 *   rules; jumping to a base chain is an error;
 * - adding a map element whose key exists with another value is an error
 *   (EEXIST), with the same value a no-op; element keys must have as many
 *   parts as the type; `flush table` empties every chain (not the sets).
 *
 * Rule text is stored as given (nft would normalise it); a netns e2e test
 * checks that the Fake and the kernel end in the same state.
 */
import { describe, elementText, joinParts, operationText, quote } from './objects.js';
import type { ChainObj, ElementObj, Family, MapObj, NftObject, SetObj, Verb } from './objects.js';
import { NftError } from './run.js';
import type { TableListing } from './run.js';
import type { Transaction } from './transaction.js';
import { objectsOf } from './transaction.js';

export interface FakeRule {
  rule: string;
  comment?: string;
  handle: number;
}

export interface FakeChain {
  name: string;
  type?: ChainObj['type'];
  hook?: ChainObj['hook'];
  priority?: number | string;
  policy?: ChainObj['policy'];
  comment?: string;
  rules: FakeRule[];
  /** Creation order (as `nft list` prints objects). */
  seq: number;
}

export interface FakeSet {
  kind: 'set' | 'map';
  name: string;
  type?: string;
  typeOf?: string;
  flags: string[];
  timeout?: number;
  size?: number;
  comment?: string;
  /** Elements by joined key. */
  elements: Map<string, ElementObj>;
  seq: number;
}

export interface FakeTable {
  family: Family;
  name: string;
  comment?: string;
  chains: Map<string, FakeChain>;
  /** Sets and maps (one namespace, as in nft). */
  sets: Map<string, FakeSet>;
  seq: number;
  nextHandle: number;
}

const NAME = '[A-Za-z_.][A-Za-z0-9_./-]*';
const CHAIN_REF = new RegExp(`\\b(?:jump|goto)\\s+(${NAME})`, 'g');
const SET_REF = new RegExp(`@(${NAME})`, 'g');

export function chainRefs(text: string): string[] {
  return [...text.matchAll(CHAIN_REF)].map((m) => m[1]!);
}

export function setRefs(text: string): string[] {
  return [...text.matchAll(SET_REF)].map((m) => m[1]!);
}

/** How many ` . `-joined parts the key (and value) of a set or map type have. */
function arity(s: FakeSet): { key: number; value: number } {
  const t = s.type ?? s.typeOf ?? '';
  const [k, v] = t.split(' : ');
  const count = (x: string | undefined): number => (x === undefined ? 0 : x.split(' . ').length);
  return { key: count(k), value: count(v) };
}

class Failure extends Error {
  constructor(
    message: string,
    readonly notFound = false,
  ) {
    super(message);
  }
}

const ENOENT = (what: string): Failure => new Failure(`Could not process rule: No such file or directory (${what})`, true);
const EEXIST = (what: string): Failure => new Failure(`Could not process rule: File exists (${what})`);
const EBUSY = (what: string): Failure => new Failure(`Could not process rule: Device or resource busy (${what})`);
const EOPNOTSUPP = (what: string): Failure => new Failure(`Could not process rule: Operation not supported (${what})`);

export interface DumpOptions {
  /** 'sorted' (default): objects by name, elements by key — canonical, for comparisons. 'list': in creation order, as `nft list table` prints them. */
  order?: 'sorted' | 'list';
}

export class FakeNft {
  private tables = new Map<string, FakeTable>();
  private seq = 0;
  /** Every transaction text applied successfully, in order (for assertions on what was sent). */
  readonly applied: string[] = [];
  /** Fail the next N transactions (as a failing nft would), without applying them. */
  failNext = 0;

  private static key(family: Family, name: string): string {
    return `${family} ${name}`;
  }

  table(family: Family, name: string): FakeTable | undefined {
    return this.tables.get(FakeNft.key(family, name));
  }

  tableNames(): string[] {
    return [...this.tables.keys()].sort();
  }

  /** Applies a transaction atomically; throws an NftError (with the failing line) and changes nothing on failure. */
  run(tx: Transaction): void {
    const text = tx.toText();
    if (this.failNext > 0) {
      this.failNext--;
      throw new NftError('nft -f failed: injected failure', 'injected failure');
    }
    const saved = this.tables;
    const savedSeq = this.seq;
    this.tables = cloneTables(this.tables);
    let line = 0;
    for (const op of tx.operations) {
      for (const obj of objectsOf(op)) {
        line++;
        try {
          this.apply(tx.family, tx.table, op.verb, obj);
        } catch (err) {
          this.tables = saved;
          this.seq = savedSeq;
          if (!(err instanceof Failure)) throw err;
          const lineText = operationText(op.verb, obj, tx.family, tx.table);
          throw new NftError(`nft -f failed: ${err.message} at input line ${line}: ${lineText}`, err.message, line, lineText, err.notFound);
        }
      }
    }
    this.applied.push(text);
  }

  private apply(family: Family, tableName: string, verb: Verb, obj: NftObject): void {
    const tkey = FakeNft.key(family, tableName);
    let t = this.tables.get(tkey);
    if (obj.kind === 'table') {
      switch (verb) {
        case 'add':
        case 'create':
          if (t && verb === 'create') throw EEXIST(`table ${tkey}`);
          if (!t) {
            const nt: FakeTable = { family, name: tableName, chains: new Map(), sets: new Map(), seq: ++this.seq, nextHandle: 1 };
            if (obj.comment !== undefined) nt.comment = obj.comment;
            this.tables.set(tkey, nt);
          }
          return;
        case 'delete':
        case 'destroy':
          if (!t && verb === 'delete') throw ENOENT(`table ${tkey}`);
          this.tables.delete(tkey);
          return;
        case 'flush':
          if (!t) throw ENOENT(`table ${tkey}`);
          for (const c of t.chains.values()) c.rules = [];
          return;
        default:
          throw EOPNOTSUPP(`${verb} table`);
      }
    }
    if (!t) {
      if (verb === 'destroy') return;
      throw ENOENT(`table ${tkey}`);
    }
    switch (obj.kind) {
      case 'chain':
        return this.applyChain(t, verb, obj);
      case 'rule':
        return this.applyRule(t, verb, obj);
      case 'set':
      case 'map':
        return this.applySet(t, verb, obj);
      case 'element':
        return this.applyElement(t, verb, obj);
    }
  }

  private applyChain(t: FakeTable, verb: Verb, obj: ChainObj): void {
    const c = t.chains.get(obj.name);
    switch (verb) {
      case 'add':
      case 'create': {
        if (c) {
          if (verb === 'create') throw EEXIST(`chain ${obj.name}`);
          // A bare `add chain` of an existing chain (base or not) changes nothing.
          if (obj.type === undefined) return;
          if (c.type !== obj.type || c.hook !== obj.hook) throw EEXIST(`chain ${obj.name} with another type or hook`);
          if (String(c.priority) !== String(obj.priority)) throw EOPNOTSUPP(`chain ${obj.name} priority change`);
          return;
        }
        if ((obj.type === undefined) !== (obj.hook === undefined) || (obj.type === undefined) !== (obj.priority === undefined)) {
          throw new Failure(`chain ${obj.name}: a base chain needs type, hook and priority`);
        }
        const nc: FakeChain = { name: obj.name, rules: [], seq: ++this.seq };
        if (obj.type !== undefined) nc.type = obj.type;
        if (obj.hook !== undefined) nc.hook = obj.hook;
        if (obj.priority !== undefined) nc.priority = obj.priority;
        if (obj.policy !== undefined) nc.policy = obj.policy;
        if (obj.comment !== undefined) nc.comment = obj.comment;
        t.chains.set(obj.name, nc);
        return;
      }
      case 'flush':
        if (!c) throw ENOENT(`chain ${obj.name}`);
        c.rules = [];
        return;
      case 'delete':
      case 'destroy': {
        if (!c) {
          if (verb === 'destroy') return;
          throw ENOENT(`chain ${obj.name}`);
        }
        const users = chainUsers(t, obj.name);
        if (users.length > 0) throw EBUSY(`chain ${obj.name} is used by ${users.slice(0, 3).join(', ')}`);
        t.chains.delete(obj.name);
        return;
      }
      default:
        throw EOPNOTSUPP(`${verb} chain`);
    }
  }

  private checkRefs(t: FakeTable, text: string, from: string): void {
    for (const target of chainRefs(text)) {
      const c = t.chains.get(target);
      if (!c) throw ENOENT(`chain ${target}, referenced by ${from}`);
      if (c.type !== undefined) throw EOPNOTSUPP(`jump to base chain ${target}`);
    }
    for (const s of setRefs(text)) if (!t.sets.has(s)) throw ENOENT(`set ${s}, referenced by ${from}`);
  }

  private applyRule(t: FakeTable, verb: Verb, obj: Extract<NftObject, { kind: 'rule' }>): void {
    const c = t.chains.get(obj.chain);
    if (!c) throw ENOENT(`chain ${obj.chain}`);
    const at = (): number => {
      if (obj.handle !== undefined) {
        const i = c.rules.findIndex((r) => r.handle === obj.handle);
        if (i < 0) throw ENOENT(`rule handle ${obj.handle} in chain ${obj.chain}`);
        return i;
      }
      if (obj.index !== undefined) {
        if (obj.index < 0 || obj.index >= c.rules.length) throw ENOENT(`rule index ${obj.index} in chain ${obj.chain}`);
        return obj.index;
      }
      return -1;
    };
    const make = (): FakeRule => {
      this.checkRefs(t, obj.rule, `a rule in chain ${obj.chain}`);
      const r: FakeRule = { rule: obj.rule, handle: t.nextHandle++ };
      if (obj.comment !== undefined) r.comment = obj.comment;
      return r;
    };
    switch (verb) {
      case 'add': {
        const i = at();
        const r = make();
        if (i < 0) c.rules.push(r);
        else c.rules.splice(i + 1, 0, r);
        return;
      }
      case 'insert': {
        const i = at();
        c.rules.splice(i < 0 ? 0 : i, 0, make());
        return;
      }
      case 'replace': {
        const i = at();
        c.rules[i] = { ...make(), handle: c.rules[i]!.handle };
        return;
      }
      case 'delete':
      case 'destroy': {
        const i = c.rules.findIndex((r) => r.handle === obj.handle);
        if (i < 0) {
          if (verb === 'destroy') return;
          throw ENOENT(`rule handle ${obj.handle} in chain ${obj.chain}`);
        }
        c.rules.splice(i, 1);
        return;
      }
      default:
        throw EOPNOTSUPP(`${verb} rule`);
    }
  }

  private applySet(t: FakeTable, verb: Verb, obj: SetObj | MapObj): void {
    const s = t.sets.get(obj.name);
    switch (verb) {
      case 'add':
      case 'create': {
        if (s) {
          if (verb === 'create') throw EEXIST(`${obj.kind} ${obj.name}`);
          if (s.kind !== obj.kind || s.type !== obj.type || s.typeOf !== obj.typeOf || s.flags.join(',') !== (obj.flags ?? []).join(',')) {
            throw EEXIST(`${obj.kind} ${obj.name} with another type or flags`);
          }
          // The kernel updates the default timeout of an existing set.
          if (obj.timeout !== undefined) s.timeout = obj.timeout;
          return;
        }
        if ((obj.type === undefined) === (obj.typeOf === undefined)) throw new Failure(`${obj.kind} ${obj.name}: needs a type or a typeof`);
        const isMapType = (obj.type ?? obj.typeOf ?? '').includes(' : ');
        if (isMapType !== (obj.kind === 'map')) throw new Failure(`${obj.kind} ${obj.name}: ${obj.kind === 'map' ? 'a map type needs " : "' : 'a set type has no value'}`);
        const ns: FakeSet = { kind: obj.kind, name: obj.name, flags: [...(obj.flags ?? [])], elements: new Map(), seq: ++this.seq };
        if (obj.type !== undefined) ns.type = obj.type;
        if (obj.typeOf !== undefined) ns.typeOf = obj.typeOf;
        if (obj.timeout !== undefined) ns.timeout = obj.timeout;
        if (obj.size !== undefined) ns.size = obj.size;
        if (obj.comment !== undefined) ns.comment = obj.comment;
        t.sets.set(obj.name, ns);
        return;
      }
      case 'flush':
        if (!s || s.kind !== obj.kind) throw ENOENT(`${obj.kind} ${obj.name}`);
        s.elements.clear();
        return;
      case 'delete':
      case 'destroy': {
        if (!s || s.kind !== obj.kind) {
          if (verb === 'destroy') return;
          throw ENOENT(`${obj.kind} ${obj.name}`);
        }
        const users = setUsers(t, obj.name);
        if (users.length > 0) throw EBUSY(`${obj.kind} ${obj.name} is used by ${users.slice(0, 3).join(', ')}`);
        t.sets.delete(obj.name);
        return;
      }
      default:
        throw EOPNOTSUPP(`${verb} ${obj.kind}`);
    }
  }

  private applyElement(t: FakeTable, verb: Verb, obj: ElementObj): void {
    const s = t.sets.get(obj.container);
    if (!s || (s.kind === 'map') !== obj.isMap) throw ENOENT(`${obj.isMap ? 'map' : 'set'} ${obj.container}`);
    const a = arity(s);
    // A part may hold several already joined with ` . ` (the renderer pre-joins them): count the real parts.
    const keyParts = joinParts(obj.key).split(' . ');
    const valueParts = obj.value === undefined ? undefined : joinParts(obj.value).split(' . ');
    if (keyParts.length !== a.key) throw new Failure(`${describe(obj)}: the key needs ${a.key} parts`);
    const k = joinParts(keyParts);
    const existing = s.elements.get(k);
    switch (verb) {
      case 'add':
      case 'create': {
        if (obj.isMap) {
          if ((valueParts ?? []).length !== a.value) throw new Failure(`${describe(obj)}: the value needs ${a.value} parts`);
          this.checkRefs(t, joinParts(obj.value ?? []), describe(obj));
        }
        if (existing) {
          if (verb === 'create') throw EEXIST(describe(obj));
          if (obj.isMap && joinParts(existing.value ?? []) !== joinParts(obj.value ?? [])) throw EEXIST(`${describe(obj)} with another value`);
          return;
        }
        s.elements.set(k, { ...obj, key: keyParts, ...(valueParts ? { value: valueParts } : {}) });
        return;
      }
      case 'delete':
      case 'destroy':
        if (!existing) {
          if (verb === 'destroy') return;
          throw ENOENT(describe(obj));
        }
        s.elements.delete(k);
        return;
      default:
        throw EOPNOTSUPP(`${verb} element`);
    }
  }

  // ---- reading the state ---------------------------------------------------

  /** What `listTable` would report for a table (names and types only). */
  listing(family: Family, tableName: string): TableListing {
    const t = this.table(family, tableName);
    const out: TableListing = { exists: t !== undefined, chains: new Map(), sets: new Map(), maps: new Map() };
    if (!t) return out;
    for (const c of t.chains.values()) out.chains.set(c.name, c.type !== undefined ? { type: c.type, hook: c.hook!, prio: Number(c.priority) } : {});
    for (const s of t.sets.values()) {
      const type = s.type ?? s.typeOf ?? '';
      if (s.kind === 'map') out.maps.set(s.name, { type, flags: [...s.flags] });
      else out.sets.set(s.name, { type, flags: [...s.flags], ...(s.timeout !== undefined ? { timeout: s.timeout } : {}) });
    }
    return out;
  }

  chainNames(family: Family, tableName: string): string[] {
    return [...(this.table(family, tableName)?.chains.keys() ?? [])].sort();
  }

  /** The rules of a chain as `rule [comment "c"]` texts; undefined when there is no such chain. */
  rules(family: Family, tableName: string, chainName: string): string[] | undefined {
    const c = this.table(family, tableName)?.chains.get(chainName);
    return c?.rules.map(ruleText);
  }

  /** The elements of a set or map, sorted by key. */
  elements(family: Family, tableName: string, container: string): ElementObj[] | undefined {
    const s = this.table(family, tableName)?.sets.get(container);
    if (!s) return undefined;
    return [...s.elements.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  }

  /** A map element's value (joined), or undefined. */
  lookup(family: Family, tableName: string, container: string, key: string[]): string | undefined {
    const e = this.table(family, tableName)?.sets.get(container)?.elements.get(joinParts(key));
    return e ? joinParts(e.value ?? []) : undefined;
  }

  /**
   * The table as `nft -f` input that recreates it in an empty namespace:
   * the table, every chain, every set and map, then the rules, then the
   * elements (so every reference resolves). '' when there is no such table.
   */
  dump(family: Family, tableName: string, opts: DumpOptions = {}): string {
    const t = this.table(family, tableName);
    if (!t) return '';
    const order = opts.order ?? 'sorted';
    const bySeq = <T extends { seq: number; name: string }>(xs: Iterable<T>): T[] =>
      [...xs].sort(order === 'list' ? (a, b) => a.seq - b.seq : (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const chains = bySeq(t.chains.values());
    const sets = bySeq(t.sets.values());
    const lines: string[] = [];
    const where = `${family} ${tableName}`;
    lines.push(`add table ${where}${t.comment !== undefined ? ` { comment ${quote(t.comment)} ; }` : ''}`);
    for (const s of sets) {
      const o = { kind: s.kind, name: s.name, flags: s.flags as SetObj['flags'] } as SetObj | MapObj;
      if (s.type !== undefined) o.type = s.type;
      if (s.typeOf !== undefined) o.typeOf = s.typeOf;
      if (s.timeout !== undefined) o.timeout = s.timeout;
      if (s.size !== undefined) o.size = s.size;
      if (s.comment !== undefined) o.comment = s.comment;
      lines.push(operationText('add', o, family, tableName));
    }
    for (const c of chains) {
      const o: ChainObj = { kind: 'chain', name: c.name };
      if (c.type !== undefined) Object.assign(o, { type: c.type, hook: c.hook, priority: c.priority });
      if (c.policy !== undefined) o.policy = c.policy;
      if (c.comment !== undefined) o.comment = c.comment;
      lines.push(operationText('add', o, family, tableName));
    }
    for (const c of chains) for (const r of c.rules) lines.push(`add rule ${where} ${c.name} ${ruleText(r)}`);
    for (const s of sets) {
      const els = [...s.elements.entries()];
      if (order === 'sorted') els.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, e] of els) lines.push(`add element ${where} ${s.name} { ${elementText(e, true)} }`);
    }
    return lines.join('\n') + '\n';
  }
}

function ruleText(r: FakeRule): string {
  return r.comment !== undefined ? `${r.rule} comment ${quote(r.comment)}` : r.rule;
}

/** Who refers to a chain: rules in other chains and map elements. */
function chainUsers(t: FakeTable, name: string): string[] {
  const out: string[] = [];
  for (const c of t.chains.values()) {
    if (c.name === name) continue;
    for (const r of c.rules) if (chainRefs(r.rule).includes(name)) out.push(`a rule in chain ${c.name}`);
  }
  for (const s of t.sets.values()) {
    if (s.kind !== 'map') continue;
    for (const e of s.elements.values()) if (chainRefs(joinParts(e.value ?? [])).includes(name)) out.push(`element ${s.name} { ${joinParts(e.key)} }`);
  }
  return out;
}

function setUsers(t: FakeTable, name: string): string[] {
  const out: string[] = [];
  for (const c of t.chains.values()) for (const r of c.rules) if (setRefs(r.rule).includes(name)) out.push(`a rule in chain ${c.name}`);
  return out;
}

function cloneTables(tables: Map<string, FakeTable>): Map<string, FakeTable> {
  const out = new Map<string, FakeTable>();
  for (const [k, t] of tables) {
    out.set(k, {
      ...t,
      chains: new Map([...t.chains].map(([n, c]) => [n, { ...c, rules: [...c.rules] }])),
      sets: new Map([...t.sets].map(([n, s]) => [n, { ...s, flags: [...s.flags], elements: new Map(s.elements) }])),
    });
  }
  return out;
}
