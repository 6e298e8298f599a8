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

export class ElementStore {
  /** element id → its contributions (port key → its element). */
  private readonly byId = new Map<string, Contributors>();

  /** Every effective element (one per id), in id order. */
  all(): ElementSpec[] {
    const out: ElementSpec[] = [];
    for (const id of [...this.byId.keys()].sort()) {
      const e = effective(this.byId.get(id));
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
      const id = elementId(e);
      const c = this.byId.get(id);
      if (c === undefined) continue;
      if (!(c instanceof Map)) {
        if (c[0] === portKey) this.byId.delete(id);
        continue;
      }
      c.delete(portKey);
      if (c.size === 1) this.byId.set(id, [...c.entries()][0]!);
      else if (c.size === 0) this.byId.delete(id);
    }
    for (const e of after ?? []) {
      const id = elementId(e);
      const c = this.byId.get(id);
      if (c === undefined || (!(c instanceof Map) && c[0] === portKey)) this.byId.set(id, [portKey, e]);
      else if (c instanceof Map) c.set(portKey, e);
      else this.byId.set(id, new Map([c, [portKey, e]]));
    }
  }

  /**
   * What changes in the kernel when these ports' elements change from
   * `before` to `after` (per port), without recording anything.
   */
  diff(changes: ReadonlyMap<string, { before: readonly ElementSpec[] | undefined; after: readonly ElementSpec[] | undefined }>): ElementChange {
    // Per touched element id: each changed port's new contribution (null: none any more).
    const overrides = new Map<string, Map<string, ElementSpec | null>>();
    const override = (id: string): Map<string, ElementSpec | null> => {
      let m = overrides.get(id);
      if (!m) overrides.set(id, (m = new Map()));
      return m;
    };
    for (const [portKey, { before, after }] of changes) {
      for (const e of before ?? []) if (!override(elementId(e)).has(portKey)) override(elementId(e)).set(portKey, null);
      for (const e of after ?? []) override(elementId(e)).set(portKey, e);
    }
    const deletes: ElementSpec[] = [];
    const adds: ElementSpec[] = [];
    for (const id of [...overrides.keys()].sort()) {
      const now = this.byId.get(id);
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
