/**
 * The elements of the shared maps and sets, as contributed by service ports.
 * Two ports may contribute the same key (a ClusterIP with several ports in
 * `cluster-ips`, or two services claiming the same external IP and port): the
 * kernel holds one element per key, the one of the greatest port key (what a
 * full sync writing ports in key order leaves, last one winning). Partial
 * syncs diff the effective elements of the keys a change touches. Pure.
 */
import { joinParts } from './nft/objects.js';
import type { ElementObj } from './nft/objects.js';
import { serviceElement } from './render-service.js';
import type { ElementSpec } from './render-service.js';

/** `container key . parts`: one element's identity. */
export const elementId = (e: Pick<ElementSpec, 'container' | 'key'>): string => `${e.container} ${joinParts(e.key)}`;

function sameElement(a: ElementSpec | undefined, b: ElementSpec | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return joinParts(a.value ?? []) === joinParts(b.value ?? []) && a.comment === b.comment;
}

/**
 * One port's element, kept lean: its owner and its value and comment as
 * strings (270,000 of these at 10,000 services; the element object is made
 * again when needed).
 */
class Lean {
  constructor(
    readonly owner: string,
    readonly value: string | undefined,
    readonly comment: string | undefined,
  ) {}
}

/** The contributions to one element: almost always a single port's, a Map when two or more ports contribute the same key. */
type Contributors = Lean | Map<string, ElementSpec>;

function greatest(contributors: ReadonlyMap<string, ElementSpec> | undefined): ElementSpec | undefined {
  if (!contributors || contributors.size === 0) return undefined;
  let bestKey: string | undefined;
  for (const k of contributors.keys()) if (bestKey === undefined || k > bestKey) bestKey = k;
  return contributors.get(bestKey!);
}

const lean = (owner: string, e: ElementSpec): Lean => new Lean(owner, e.value === undefined ? undefined : e.value.length === 1 ? e.value[0] : joinParts(e.value), e.comment);

/** The element a lean entry stands for, as an nft element object. */
const element = (container: string, key: string, l: Lean): ElementSpec & ElementObj =>
  serviceElement(container, [key], l.value === undefined ? undefined : [l.value], l.comment);

export interface ElementChange {
  /** Elements to delete (the old effective element of a key that changed or disappeared). */
  deletes: ElementSpec[];
  /** Elements to add (the new effective element of a key that changed or appeared). */
  adds: ElementSpec[];
}

/** Contributions by container, then by the key's text (no id string per element). */
class ById {
  readonly containers = new Map<string, Map<string, Contributors>>();
  size = 0;
  /** The map of one container and the element's key text in it. */
  slot(e: Pick<ElementSpec, 'container' | 'key'>): { m: Map<string, Contributors>; k: string } {
    let m = this.containers.get(e.container);
    if (!m) this.containers.set(e.container, (m = new Map()));
    return { m, k: e.key.length === 1 ? e.key[0]! : joinParts(e.key) };
  }
  put(m: Map<string, Contributors>, k: string, c: Contributors): void {
    const before = m.size;
    m.set(k, c);
    this.size += m.size - before;
  }
  remove(m: Map<string, Contributors>, k: string): void {
    if (m.delete(k)) this.size--;
  }
}

export class ElementStore {
  /** Each element's contributions (port key → its element). */
  private readonly byId = new ById();

  /** The element in effect for a key. */
  private effective(container: string, key: string, c: Contributors | undefined): ElementSpec | undefined {
    return c === undefined ? undefined : c instanceof Map ? greatest(c) : element(container, key, c);
  }

  /**
   * Every effective element (one per id), container by container in the
   * order they were first recorded, made as they are taken: a store filled
   * from ports in key order (a full sync) always gives the same order.
   */
  *all(): Generator<ElementSpec & ElementObj> {
    for (const [container, m] of this.byId.containers) {
      for (const [k, c] of m) {
        const e = this.effective(container, k, c);
        // (The renderer's elements and the lean ones made again are nft element objects already.)
        if (e) yield e as ElementSpec & ElementObj;
      }
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /** Records a port's elements (undefined: the port is gone), replacing what it had. */
  record(portKey: string, before: readonly ElementSpec[] | undefined, after: readonly ElementSpec[] | undefined): void {
    for (const e of before ?? []) {
      const { m, k } = this.byId.slot(e);
      const c = m.get(k);
      if (c === undefined) continue;
      if (!(c instanceof Map)) {
        if (c.owner === portKey) this.byId.remove(m, k);
        continue;
      }
      c.delete(portKey);
      if (c.size === 1) {
        const [owner, only] = [...c.entries()][0]!;
        m.set(k, lean(owner, only));
      } else if (c.size === 0) this.byId.remove(m, k);
    }
    for (const e of after ?? []) {
      const { m, k } = this.byId.slot(e);
      const c = m.get(k);
      if (c === undefined || (!(c instanceof Map) && c.owner === portKey)) this.byId.put(m, k, lean(portKey, e));
      else if (c instanceof Map) c.set(portKey, e);
      else m.set(k, new Map([[c.owner, element(e.container, k, c)], [portKey, e]]));
    }
  }

  /**
   * What changes in the kernel when these ports' elements change from
   * `before` to `after` (per port), without recording anything.
   */
  diff(changes: ReadonlyMap<string, { before: readonly ElementSpec[] | undefined; after: readonly ElementSpec[] | undefined }>): ElementChange {
    // Per touched element id: each changed port's new contribution (null: none any more).
    const overrides = new Map<string, Map<string, ElementSpec | null>>();
    const samples = new Map<string, ElementSpec>();
    const override = (e: ElementSpec): Map<string, ElementSpec | null> => {
      const id = elementId(e);
      let m = overrides.get(id);
      if (!m) {
        overrides.set(id, (m = new Map()));
        samples.set(id, e);
      }
      return m;
    };
    for (const [portKey, { before, after }] of changes) {
      for (const e of before ?? []) if (!override(e).has(portKey)) override(e).set(portKey, null);
      for (const e of after ?? []) override(e).set(portKey, e);
    }
    const deletes: ElementSpec[] = [];
    const adds: ElementSpec[] = [];
    for (const id of [...overrides.keys()].sort()) {
      const sample = samples.get(id)!;
      const { m, k } = this.byId.slot(sample);
      const now = m.get(k);
      const next = now === undefined ? new Map<string, ElementSpec>() : now instanceof Map ? new Map(now) : new Map([[now.owner, element(sample.container, k, now)]]);
      for (const [portKey, e] of overrides.get(id)!) {
        if (e === null) next.delete(portKey);
        else next.set(portKey, e);
      }
      const a = this.effective(sample.container, k, now);
      const b = greatest(next);
      if (sameElement(a, b)) continue;
      if (a) deletes.push(a);
      if (b) adds.push(b);
    }
    return { deletes, adds };
  }
}
