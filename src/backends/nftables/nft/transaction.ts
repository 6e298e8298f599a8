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

  /** Operations per `verb kind` (`add rule`, `delete element`, ...), for metrics and reports. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const op of this.operations) {
      const k = `${op.verb} ${op.obj.kind}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  /** The `nft -f -` input: one operation per line, in order. */
  toText(): string {
    if (this.text === undefined) {
      const lines: string[] = [];
      for (const op of this.operations) lines.push(operationText(op.verb, op.obj, this.family, this.table));
      this.text = lines.length === 0 ? '' : lines.join('\n') + '\n';
    }
    return this.text;
  }
}
