/**
 * The elements of the shared maps and sets, as contributed by service ports.
 * Two ports may contribute the same key (a ClusterIP with several ports in
 * `cluster-ips`, or two services claiming the same external IP and port): the
 * kernel holds one element per key, the one of the greatest port key (what a
 * full sync writing ports in key order leaves, last one winning). Partial
 * syncs diff the effective elements of the keys a change touches. Pure.
 */
import { joinParts } from './nft/objects.js';
import type { ElementSpec } from './render-service.js';

/** `container key . parts`: one element's identity. */
export const elementId = (e: Pick<ElementSpec, 'container' | 'key'>): string => `${e.container} ${joinParts(e.key)}`;

function sameElement(a: ElementSpec | undefined, b: ElementSpec | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return joinParts(a.value ?? []) === joinParts(b.value ?? []) && a.comment === b.comment;
}

/**
 * The contributions to one element: almost always a single port's (kept as
 * `[portKey, element]`, no Map: 270,000 elements at 10,000 services), a Map
 * when two or more ports contribute the same key.
 */
type Contributors = readonly [string, ElementSpec] | Map<string, ElementSpec>;

function greatest(contributors: ReadonlyMap<string, ElementSpec> | undefined): ElementSpec | undefined {
  if (!contributors || contributors.size === 0) return undefined;
  let bestKey: string | undefined;
  for (const k of contributors.keys()) if (bestKey === undefined || k > bestKey) bestKey = k;
  return contributors.get(bestKey!);
}

const effective = (c: Contributors | undefined): ElementSpec | undefined => (c === undefined ? undefined : c instanceof Map ? greatest(c) : c[1]);

const asMap = (c: Contributors | undefined): Map<string, ElementSpec> => (c === undefined ? new Map() : c instanceof Map ? new Map(c) : new Map([c]));

export interface ElementChange {
  /** Elements to delete (the old effective element of a key that changed or disappeared). */
  deletes: ElementSpec[];
  /** Elements to add (the new effective element of a key that changed or appeared). */
  adds: ElementSpec[];
  /** The contributions to record once applied. */
  updates: Map<string, ElementSpec[] | undefined>;
}

/** Contributions by container, then by the key's text (no id string per element). */
class ById {
  private readonly containers = new Map<string, Map<string, Contributors>>();
  size = 0;
  /** The map of one container and the element's key text in it. */
  slot(e: Pick<ElementSpec, 'container' | 'key'>): { m: Map<string, Contributors>; k: string } {
    let m = this.containers.get(e.container);
    if (!m) this.containers.set(e.container, (m = new Map()));
    return { m, k: e.key.length === 1 ? e.key[0]! : joinParts(e.key) };
  }
  get(e: Pick<ElementSpec, 'container' | 'key'>): Contributors | undefined {
    const { m, k } = this.slot(e);
    return m.get(k);
  }
  set(e: Pick<ElementSpec, 'container' | 'key'>, c: Contributors): void {
    const { m, k } = this.slot(e);
    this.put(m, k, c);
  }
  put(m: Map<string, Contributors>, k: string, c: Contributors): void {
    const before = m.size;
    m.set(k, c);
    this.size += m.size - before;
  }
  delete(e: Pick<ElementSpec, 'container' | 'key'>): void {
    const { m, k } = this.slot(e);
    if (m.delete(k)) this.size--;
  }
  /** Every contribution, container by container, in the order first recorded. */
  *values(): Generator<Contributors> {
    for (const m of this.containers.values()) yield* m.values();
  }
}

export class ElementStore {
  /** Each element's contributions (port key → its element). */
  private readonly byId = new ById();

  /**
   * Every effective element (one per id), container by container in the
   * order they were first recorded: a store filled from ports in key order
   * (a full sync) always gives the same order.
   */
  all(): ElementSpec[] {
    const out: ElementSpec[] = [];
    for (const c of this.byId.values()) {
      const e = effective(c);
      if (e) out.push(e);
    }
    return out;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Records a port's elements (undefined: the port is gone), replacing what it had. */
  record(portKey: string, before: readonly ElementSpec[] | undefined, after: readonly ElementSpec[] | undefined): void {
    for (const e of before ?? []) {
      const c = this.byId.get(e);
      if (c === undefined) continue;
      if (!(c instanceof Map)) {
        if (c[0] === portKey) this.byId.delete(e);
        continue;
      }
      c.delete(portKey);
      if (c.size === 1) this.byId.set(e, [...c.entries()][0]!);
      else if (c.size === 0) this.byId.delete(e);
    }
    for (const e of after ?? []) {
      const { m, k } = this.byId.slot(e);
      const c = m.get(k);
      if (c === undefined || (!(c instanceof Map) && c[0] === portKey)) this.byId.put(m, k, [portKey, e]);
      else if (c instanceof Map) c.set(portKey, e);
      else m.set(k, new Map([c, [portKey, e]]));
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
      const now = this.byId.get(samples.get(id)!);
      const next = asMap(now);
      for (const [portKey, e] of overrides.get(id)!) {
        if (e === null) next.delete(portKey);
        else next.set(portKey, e);
      }
      const a = effective(now);
      const b = greatest(next);
      if (sameElement(a, b)) continue;
      if (a) deletes.push(a);
      if (b) adds.push(b);
    }
    const updates = new Map<string, ElementSpec[] | undefined>();
    for (const [k, { after }] of changes) updates.set(k, after ? [...after] : undefined);
    return { deletes, adds, updates };
  }
}
