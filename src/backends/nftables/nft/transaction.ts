/**
 * A batch of nftables operations on one table. One Transaction is one
 * `nft -f -` call, which the kernel applies atomically: all or nothing.
 * The same Transaction objects are applied by the in-memory Fake in tests.
 */
import { describe, operationText, VERBS } from './objects.js';
import type { Family, NftObject, Verb } from './objects.js';

export interface Operation {
  verb: Verb;
  obj: NftObject;
}

export class Transaction {
  readonly operations: Operation[] = [];
  private text: string | undefined;
  private bytes: number | undefined;

  constructor(
    readonly family: Family,
    readonly table: string,
  ) {}

  private push(verb: Verb, obj: NftObject): this {
    if (!VERBS[obj.kind].includes(verb)) throw new Error(`nft: "${verb}" is not an operation on a ${obj.kind}`);
    if (obj.kind === 'rule') {
      if (obj.handle !== undefined && obj.index !== undefined) throw new Error('nft: a rule takes a handle or an index, not both');
      if ((verb === 'replace' || verb === 'delete' || verb === 'destroy') && obj.handle === undefined) {
        throw new Error(`nft: ${verb} ${describe(obj)} needs the rule's handle`);
      }
    }
    if (obj.kind === 'element' && obj.isMap && (verb === 'add' || verb === 'create') && (!obj.value || obj.value.length === 0)) {
      throw new Error(`nft: ${describe(obj)} of a map needs a value`);
    }
    this.operations.push({ verb, obj });
    this.text = undefined;
    this.bytes = undefined;
    return this;
  }

  add(obj: NftObject): this {
    return this.push('add', obj);
  }
  create(obj: NftObject): this {
    return this.push('create', obj);
  }
  insert(obj: NftObject): this {
    return this.push('insert', obj);
  }
  replace(obj: NftObject): this {
    return this.push('replace', obj);
  }
  delete(obj: NftObject): this {
    return this.push('delete', obj);
  }
  flush(obj: NftObject): this {
    return this.push('flush', obj);
  }
  /** Like delete, but no error when the object does not exist (nft >= 1.0.8, kernel >= 6.3). */
  destroy(obj: NftObject): this {
    return this.push('destroy', obj);
  }

  get size(): number {
    return this.operations.length;
  }

  get isEmpty(): boolean {
    return this.operations.length === 0;
  }

  /** Operations per `verb kind` (`add rule`, `delete element`, ...; a batch counts its elements), for metrics and reports. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const op of this.operations) {
      const batch = op.obj.kind === 'elements' ? op.obj : undefined;
      const k = `${op.verb} ${batch ? 'element' : op.obj.kind}`;
      out[k] = (out[k] ?? 0) + (batch ? batch.count : 1);
    }
    return out;
  }

  /**
   * The `nft -f -` input: one operation per line, in commit order (see
   * commitOrder: the operations' order, except that the rules of chains
   * using anonymous sets come as early as what they depend on allows).
   */
  toText(): string {
    this.text ??= [...this.chunks()].join('');
    return this.text;
  }

  /**
   * The same input as toText, in pieces of about `pieceSize` characters made
   * as they are taken: a 30 MB full sync is written to nft without ever
   * being one string (nor 300,000 line strings at once).
   */
  *chunks(pieceSize = 64 * 1024): Generator<string, void, undefined> {
    if (this.text !== undefined) {
      yield this.text;
      return;
    }
    let piece = '';
    let bytes = 0;
    for (const i of commitOrder(this.operations)) {
      const op = this.operations[i]!;
      for (const obj of objectsOf(op)) {
        piece += `${operationText(op.verb, obj, this.family, this.table)}\n`;
        if (piece.length >= pieceSize) {
          bytes += Buffer.byteLength(piece);
          yield piece;
          piece = '';
        }
      }
    }
    if (piece !== '') {
      bytes += Buffer.byteLength(piece);
      yield piece;
    }
    this.bytes = bytes;
  }

  /** The input's size in bytes (known without building it again once toText or chunks has run to the end). */
  byteLength(): number {
    if (this.bytes === undefined) {
      let n = 0;
      for (const c of this.chunks()) n += Buffer.byteLength(c);
      this.bytes = n;
    }
    return this.bytes;
  }
}

/** The objects an operation applies to: itself, or a batch's elements (made as they are taken). */
export function objectsOf(op: Operation): Iterable<NftObject> {
  return op.obj.kind === 'elements' ? op.obj.items() : [op.obj];
}

/** The chains a rule's text jumps or goes to (`jump X`, `goto X`, also inside a verdict map literal). */
function chainRefs(ruleText: string): string[] {
  return [...ruleText.matchAll(/\b(?:jump|goto)\s+([^\s,{}]+)/g)].map((m) => m[1]!);
}

/** The named sets and maps a rule's text looks up (`@name`). */
function setRefs(ruleText: string): string[] {
  return [...ruleText.matchAll(/@([^\s,{}]+)/g)].map((m) => m[1]!);
}

/**
 * The order in which to write a transaction's operations: their own order,
 * except that the rules (and the flush) of each chain that has a rule with
 * an anonymous set or map (`vmap { ... }`, `{ a, b }`) move up to just after
 * the last earlier operation they depend on: the table's, their chain's
 * (adds, flushes and rules: a chain's rules keep their order), the creation
 * or deletion of every chain they jump or go to, and every operation on a
 * set or map they name (but not its elements). The table the kernel ends
 * with is the same, and so is whether the transaction applies.
 *
 * Why: the kernel (nf_tables, up to 6.18 at least) walks the whole list of
 * the transaction's pending operations each time a rule binds an anonymous
 * set (__nft_set_trans_bind), so a rule written after 300,000 other
 * operations costs 300,000 steps; with one anonymous vmap per service, that
 * walk was 77% of a 10,000-service full sync. Written right after the
 * chains they need, these rules see a short list.
 */
export function commitOrder(ops: readonly Operation[]): number[] {
  const anon = new Set<string>();
  for (const op of ops) if (op.obj.kind === 'rule' && op.verb === 'add' && op.obj.rule.includes('{')) anon.add(op.obj.chain);
  if (anon.size === 0) return ops.map((_, i) => i);

  // For each object, the anchor of the last operation on it: the index of an operation that keeps its place.
  const lastOn = new Map<string, number>();
  const at = (key: string): number => lastOn.get(key) ?? -1;
  /** Operations moved up, per anchor: written right after it, in order. */
  const after = new Map<number, number[]>();
  const moved = new Set<number>();
  ops.forEach((op, i) => {
    const o = op.obj;
    if (o.kind === 'table') {
      lastOn.set('table', i);
      return;
    }
    const name =
      o.kind === 'rule' && op.verb === 'add' && o.handle === undefined && o.index === undefined ? o.chain : o.kind === 'chain' && op.verb === 'flush' ? o.name : undefined;
    if (name !== undefined && anon.has(name)) {
      let anchor = Math.max(at('table'), at(`chain ${name}`));
      if (o.kind === 'rule') {
        for (const c of chainRefs(o.rule)) anchor = Math.max(anchor, at(`exists ${c}`));
        for (const s of setRefs(o.rule)) anchor = Math.max(anchor, at(`set ${s}`));
      }
      if (anchor >= 0 && anchor < i) {
        (after.get(anchor) ?? after.set(anchor, []).get(anchor)!).push(i);
        moved.add(i);
        lastOn.set(`chain ${name}`, anchor);
        return;
      }
    }
    switch (o.kind) {
      case 'chain':
        lastOn.set(`chain ${o.name}`, i);
        if (op.verb !== 'flush') lastOn.set(`exists ${o.name}`, i);
        break;
      case 'rule':
        lastOn.set(`chain ${o.chain}`, i);
        break;
      case 'set':
      case 'map':
        lastOn.set(`set ${o.name}`, i);
        break;
      case 'element':
        break;
    }
  });
  const order: number[] = [];
  ops.forEach((_, i) => {
    if (!moved.has(i)) order.push(i);
    for (const j of after.get(i) ?? []) order.push(j);
  });
  return order;
}
