/**
 * Partial syncs: given what the last successful sync wrote and the service
 * ports that changed, plan one transaction that touches only those ports:
 * their new chains are added, their changed chains flushed and refilled,
 * their shared map and set elements added or deleted (never the maps
 * themselves), and the chains and affinity sets they no longer use deleted
 * after the elements pointing at them. Nothing is read from the kernel. Pure.
 *
 * The table after a partial sync equals the table after a full sync of the
 * same snapshot; tests check exactly that.
 *
 * The shared load-balancing chains (lb-chains.ts) are counted: one is added
 * when the first port starts using it and deleted with the last one.
 *
 * Order inside the transaction (each step only refers to what exists):
 *   1. add the new chains;
 *   2. flush the changed chains and those to delete;
 *   3. delete the affinity sets no longer used (or changed), add the new ones;
 *   4. add the rules of the new and changed chains;
 *   5. delete, then add, shared elements;
 *   6. delete the chains no longer used (unless deferred).
 */
import type { NftRenderConfig } from './config.js';
import type { ElementStore } from './elements.js';
import { fixedRules } from './layout.js';
import { chain } from './nft/objects.js';
import type { Transaction } from './nft/transaction.js';
import { affinitySetObj, elementObj, newTransaction, writeRules } from './render.js';
import { renderServicePort } from './render-service.js';
import type { AffinitySetSpec, ChainSpec, ElementSpec, RenderedServicePort } from './render-service.js';
import type { ServicePort } from '../../agent/model/types.js';

/**
 * What the kernel holds, as far as this backend wrote it: the service ports
 * it was written from (the model's own objects, so they cost nothing; a
 * changed port's previous rules are rendered again from them, the renderer
 * being pure), the elements in effect, and the shared chains' use counts.
 */
export interface WrittenState {
  cfg: NftRenderConfig;
  ports: Map<string, ServicePort>;
  elements: ElementStore;
  /** Shared chain name → how many ports use it. */
  shared: Map<string, number>;
}

export interface PartialPlan {
  tx: Transaction;
  /** The rendered ports to record once applied (undefined: the port is gone). */
  updates: Map<string, RenderedServicePort | undefined>;
  /** Their service ports, and what they were rendered as when last written. */
  servicePorts: Map<string, ServicePort | undefined>;
  previous: Map<string, RenderedServicePort | undefined>;
  /** Chains no longer used (flushed; deleted unless deferred). */
  staleChains: string[];
  /** New use counts of the shared chains this plan touches (0: deleted). */
  sharedCounts: Map<string, number>;
}

function sameRules(a: ChainSpec, b: ChainSpec): boolean {
  return a.rules.length === b.rules.length && a.rules.every((r, i) => r.rule === b.rules[i]!.rule && r.comment === b.rules[i]!.comment);
}

const sameSet = (a: AffinitySetSpec, b: AffinitySetSpec): boolean => a.type === b.type && a.typeOf === b.typeOf && a.timeout === b.timeout && a.size === b.size;

export function planPartial(
  written: WrittenState,
  changed: Iterable<string>,
  lookup: (key: string) => ServicePort | undefined,
  cfg: NftRenderConfig,
  opts: { deferStaleChains?: boolean; rewriteFixedChains?: readonly string[] } = {},
): PartialPlan {
  const updates = new Map<string, RenderedServicePort | undefined>();
  const servicePorts = new Map<string, ServicePort | undefined>();
  const previous = new Map<string, RenderedServicePort | undefined>();
  for (const key of [...new Set(changed)].sort()) {
    const sp = lookup(key);
    const before = written.ports.get(key);
    if (!sp && !before) continue;
    updates.set(key, sp ? renderServicePort(sp, cfg) : undefined);
    servicePorts.set(key, sp);
    previous.set(key, before ? renderServicePort(before, written.cfg) : undefined);
  }

  const newChains: ChainSpec[] = [];
  const rewritten: ChainSpec[] = [];
  const stale: string[] = [];
  const setsGone: AffinitySetSpec[] = [];
  const setsNew: AffinitySetSpec[] = [];
  const elementChanges = new Map<string, { before: ElementSpec[] | undefined; after: ElementSpec[] | undefined }>();

  for (const [key, next] of updates) {
    const prev = previous.get(key);
    const prevSets = new Map((prev?.sets ?? []).map((s) => [s.name, s]));
    let setChanged = false;
    for (const s of next?.sets ?? []) {
      const old = prevSets.get(s.name);
      if (old && sameSet(old, s)) {
        prevSets.delete(s.name);
        continue;
      }
      if (old) {
        // Same name, another timeout: the set is re-created, so every rule naming it is rewritten.
        setsGone.push(old);
        prevSets.delete(s.name);
        setChanged = true;
      }
      setsNew.push(s);
    }
    setsGone.push(...prevSets.values());

    const prevChains = new Map((prev?.chains ?? []).map((c) => [c.name, c]));
    for (const c of next?.chains ?? []) {
      const old = prevChains.get(c.name);
      prevChains.delete(c.name);
      if (!old) newChains.push(c);
      else if (setChanged || !sameRules(old, c)) rewritten.push(c);
    }
    stale.push(...prevChains.keys());
    elementChanges.set(key, { before: prev?.elements, after: next?.elements });
  }

  // Shared chains: added with their first user, stale with their last.
  const delta = new Map<string, { spec?: ChainSpec; n: number }>();
  for (const [key, next] of updates) {
    for (const c of previous.get(key)?.shared ?? []) delta.set(c.name, { ...delta.get(c.name), n: (delta.get(c.name)?.n ?? 0) - 1 });
    for (const c of next?.shared ?? []) delta.set(c.name, { spec: c, n: (delta.get(c.name)?.n ?? 0) + 1 });
  }
  const counts = new Map<string, number>();
  for (const [name, d] of [...delta].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const before = written.shared.get(name) ?? 0;
    const after = before + d.n;
    counts.set(name, after);
    if (before === 0 && after > 0) newChains.push(d.spec!);
    else if (before > 0 && after === 0) stale.push(name);
  }

  const tx = newTransaction(cfg);
  for (const c of newChains) tx.add(chain(c.name));
  for (const c of rewritten) tx.flush(chain(c.name));
  for (const name of stale) tx.flush(chain(name));
  for (const s of setsGone) tx.delete(affinitySetObj(s));
  for (const s of setsNew) tx.add(affinitySetObj(s));
  for (const c of [...newChains, ...rewritten]) writeRules(tx, c);
  if (opts.rewriteFixedChains && opts.rewriteFixedChains.length > 0) {
    const fixed = fixedRules(cfg);
    for (const name of opts.rewriteFixedChains) {
      tx.flush(chain(name));
      writeRules(tx, { name, rules: fixed.get(name) ?? [] });
    }
  }

  const el = written.elements.diff(elementChanges);
  for (const e of el.deletes) tx.delete(elementObj({ container: e.container, key: e.key }));
  for (const e of el.adds) tx.add(elementObj(e));

  if (!opts.deferStaleChains) for (const name of stale) tx.delete(chain(name));
  return { tx, updates, servicePorts, previous, staleChains: stale, sharedCounts: counts };
}

/** Records an applied plan. */
export function applyPlan(written: WrittenState, plan: PartialPlan): void {
  for (const [k, v] of plan.updates) {
    written.elements.record(k, plan.previous.get(k)?.elements, v?.elements);
    const sp = plan.servicePorts.get(k);
    if (sp) written.ports.set(k, sp);
    else written.ports.delete(k);
  }
  for (const [name, n] of plan.sharedCounts) {
    if (n > 0) written.shared.set(name, n);
    else written.shared.delete(name);
  }
}
