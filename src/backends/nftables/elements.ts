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

function greatest(contributors: ReadonlyMap<string, ElementSpec> | undefined): ElementSpec | undefined {
  if (!contributors || contributors.size === 0) return undefined;
  let bestKey: string | undefined;
  for (const k of contributors.keys()) if (bestKey === undefined || k > bestKey) bestKey = k;
  return contributors.get(bestKey!);
}

export interface ElementChange {
  /** Elements to delete (the old effective element of a key that changed or disappeared). */
  deletes: ElementSpec[];
  /** Elements to add (the new effective element of a key that changed or appeared). */
  adds: ElementSpec[];
  /** The contributions to record once applied. */
  updates: Map<string, ElementSpec[] | undefined>;
}

export class ElementStore {
  /** element id → (port key → its element). */
  private readonly byId = new Map<string, Map<string, ElementSpec>>();

  /** Every effective element (one per id), in id order. */
  all(): ElementSpec[] {
    const out: ElementSpec[] = [];
    for (const id of [...this.byId.keys()].sort()) {
      const e = greatest(this.byId.get(id));
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
      const m = this.byId.get(elementId(e));
      if (!m) continue;
      m.delete(portKey);
      if (m.size === 0) this.byId.delete(elementId(e));
    }
    for (const e of after ?? []) {
      const id = elementId(e);
      let m = this.byId.get(id);
      if (!m) this.byId.set(id, (m = new Map()));
      m.set(portKey, e);
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
      const next = new Map(now ?? []);
      for (const [portKey, e] of overrides.get(id)!) {
        if (e === null) next.delete(portKey);
        else next.set(portKey, e);
      }
      const a = greatest(now);
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
