/**
 * The pure nftables renderer: a snapshot in, one Transaction out (no I/O).
 * A full sync rewrites the whole `kube-proxy` table of one family the way
 * upstream does (add + flush every chain, flush the maps, re-add every rule
 * and element), so objects that survive keep their identity (the dynamic
 * session-affinity sets keep their entries) and what is stale is flushed and
 * deleted, all in one atomic `nft -f -` transaction.
 */
import type { Snapshot } from '../../agent/model/types.js';
import { nftFamily } from './config.js';
import type { NftRenderConfig } from './config.js';
import { ElementStore } from './elements.js';
import { BASE_CHAINS, fixedRules, fixedSets, nodePortIPs, nodePortIPsSet, nodePortsMatchAll, REGULAR_CHAINS } from './layout.js';
import { NODEPORT_IPS_SET, TABLE } from './names.js';
import { chain, rule, set, setElement, table } from './nft/objects.js';
import type { ElementObj, SetObj } from './nft/objects.js';
import type { TableListing } from './nft/run.js';
import { Transaction } from './nft/transaction.js';
import { renderServicePort, serviceElement } from './render-service.js';
import type { AffinitySetSpec, ChainSpec, ElementSpec, RenderedServicePort } from './render-service.js';

export type { NftRenderConfig } from './config.js';
export { DEFAULT_NFT_CONFIG } from './config.js';

export const TABLE_COMMENT = 'rules for kube-proxy';

/**
 * Renders every service port of the snapshot, in key order, one at a time
 * as they are taken (a full sync keeps what it needs of each and drops the
 * rest: at 10,000 services the rendered elements alone are 270,000 objects).
 */
export function* renderAll(snapshot: Snapshot, cfg: NftRenderConfig): Generator<[string, RenderedServicePort]> {
  for (const key of [...snapshot.servicePorts.keys()].sort()) yield [key, renderServicePort(snapshot.servicePorts.get(key)!, cfg)];
}

export function newTransaction(cfg: NftRenderConfig): Transaction {
  return new Transaction(nftFamily(cfg), TABLE);
}

export function elementObj(e: ElementSpec): ElementObj {
  // The renderer and the element store make ElementObjs already (serviceElement): no copies.
  if ((e as Partial<ElementObj>).kind === 'element') return e as ElementObj;
  return serviceElement(e.container, e.key, e.value, e.comment);
}

export function affinitySetObj(s: AffinitySetSpec): SetObj {
  // "dynamic" too: the packet path adds to it (upstream notes that without it some kernels add the flag themselves).
  const typed = s.typeOf !== undefined ? { typeOf: s.typeOf } : { type: s.type ?? '' };
  return set(s.name, { ...typed, flags: ['dynamic', 'timeout'], timeout: s.timeout, ...(s.size !== undefined ? { size: s.size } : {}) });
}

export function writeRules(tx: Transaction, c: ChainSpec): void {
  for (const r of c.rules) tx.add(rule(c.name, r.rule, r.comment));
}

export interface FullPlanOptions {
  /**
   * What the table holds now (names and types), from `nft list`: chains
   * and sets there but not wanted are flushed and deleted, only existing
   * chains are flushed. Undefined (dry run): every declared chain is flushed
   * and nothing is known to be stale.
   */
  existing?: TableListing;
  /** Re-create every base chain (add + delete first), so a changed priority applies: once per process, as upstream. */
  resetBaseChains?: boolean;
  /** Flush stale chains but leave their deletion to a later transaction (kernels before 6.2). */
  deferStaleChains?: boolean;
}

export interface FullPlan {
  tx: Transaction;
  /** The effective shared elements written. */
  elements: ElementStore;
  /** How many ports use each shared chain. */
  shared: Map<string, number>;
  /** Chains flushed as stale (and deleted, unless deferred). */
  staleChains: string[];
}

/** Plans a full sync of the given rendered ports (in key order; taken once). Pure. */
export function planFull(ports: Iterable<[string, RenderedServicePort]>, cfg: NftRenderConfig, opts: FullPlanOptions = {}): FullPlan {
  const tx = newTransaction(cfg);
  const existing = opts.existing;
  const isThere = (name: string): boolean => existing === undefined || existing.chains.has(name);

  tx.add(table(TABLE_COMMENT));
  // Base chains are re-created (add + delete first) when asked to (the first full sync of a process,
  // as upstream) and when the table has one with another type, hook or priority (an older layout).
  for (const bc of BASE_CHAINS) {
    const now = existing?.chains.get(bc.name);
    const differs = now !== undefined && (now.type !== bc.type || now.hook !== bc.hook || now.prio !== bc.priority);
    if (opts.resetBaseChains || differs) {
      tx.add(chain(bc.name));
      tx.delete(chain(bc.name));
    }
  }

  // Declare every chain, then flush those that may hold old rules (and the stale ones).
  const wantedChains = new Set<string>();
  const declared: ChainSpec[] = [];
  for (const bc of BASE_CHAINS) {
    tx.add(chain(bc.name, { type: bc.type, hook: bc.hook, priority: bc.priority }));
    wantedChains.add(bc.name);
  }
  for (const c of REGULAR_CHAINS) {
    tx.add(chain(c.name, c.comment !== undefined ? { comment: c.comment } : {}));
    wantedChains.add(c.name);
  }
  // One pass over the ports: their chains and sets are kept for the steps below, their elements go to the store.
  const affinity = new Map<string, AffinitySetSpec>();
  const elements = new ElementStore();
  const shared = new Map<string, number>();
  for (const [key, p] of ports) {
    for (const c of [...p.shared, ...p.chains]) {
      if (wantedChains.has(c.name)) continue;
      tx.add(chain(c.name));
      wantedChains.add(c.name);
      declared.push(c);
    }
    for (const c of p.shared) shared.set(c.name, (shared.get(c.name) ?? 0) + 1);
    for (const st of p.sets) affinity.set(st.name, st);
    elements.record(key, undefined, p.elements);
  }
  for (const name of wantedChains) if (isThere(name)) tx.flush(chain(name));
  const staleChains = existing ? [...existing.chains.keys()].filter((n) => !wantedChains.has(n)).sort() : [];
  for (const name of staleChains) tx.flush(chain(name));

  // Sets and maps. No rule refers to anything now: stale ones, and those of another kind, type or
  // timeout, are deleted; the fixed ones are emptied (and refilled below); affinity sets keep their entries.
  const fixed = fixedSets(cfg);
  // (A `typeof` map is listed with the types nft derived: only its kind is compared.)
  const wanted = new Map<string, { kind: 'set' | 'map'; type?: string; timeout?: number }>();
  for (const s of fixed) wanted.set(s.name, s.type !== undefined ? { kind: s.kind, type: s.type } : { kind: s.kind });
  for (const s of affinity.values()) wanted.set(s.name, s.type !== undefined ? { kind: 'set', type: s.type, timeout: s.timeout } : { kind: 'set', timeout: s.timeout });
  const present = new Set<string>();
  if (existing) {
    const listed: [string, 'set' | 'map', { type: string; timeout?: number }][] = [
      ...[...existing.sets].map(([n, i]): [string, 'set', { type: string; timeout?: number }] => [n, 'set', i]),
      ...[...existing.maps].map(([n, i]): [string, 'map', { type: string }] => [n, 'map', i]),
    ].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [name, kind, info] of listed) {
      const w = wanted.get(name);
      if (w && w.kind === kind && (w.type === undefined || w.type === info.type) && (w.timeout === undefined || w.timeout === info.timeout)) present.add(name);
      else tx.delete(kind === 'map' ? { kind: 'map', name, type: info.type } : { kind: 'set', name, type: info.type });
    }
  }
  for (const s of fixed) {
    tx.add(s);
    if (existing === undefined || present.has(s.name)) tx.flush(s);
  }
  if (existing === undefined && nodePortsMatchAll(cfg)) {
    // nodeport-ips is not used: make sure it is gone (add + delete: no error when it was not there).
    tx.add(nodePortIPsSet(cfg));
    tx.delete(nodePortIPsSet(cfg));
  }
  for (const s of [...affinity.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) tx.add(affinitySetObj(s));

  // Rules.
  const fr = fixedRules(cfg);
  for (const [name, rules] of fr) writeRules(tx, { name, rules });
  for (const c of declared) writeRules(tx, c);

  // Elements.
  for (const ip of nodePortIPs(cfg)) tx.add(setElement(NODEPORT_IPS_SET, [ip]));
  // Made from the store as nft reads them.
  if (elements.size > 0) tx.add({ kind: 'elements', count: elements.size, items: () => elements.all() });

  if (!opts.deferStaleChains) for (const name of staleChains) tx.delete(chain(name));
  return { tx, elements, shared, staleChains };
}

/**
 * The transaction a full sync of this snapshot would apply to a table in an
 * unknown state (every chain flushed, nothing known to be stale), without
 * any I/O: for --dry-run and tests.
 */
export function renderFullSync(snapshot: Snapshot, cfg: NftRenderConfig): { tx: Transaction; text: string } {
  const { tx } = planFull(renderAll(snapshot, cfg), cfg);
  return { tx, text: tx.toText() };
}

/** The transaction that removes this family's table (and nothing else): add + delete, so no error when it is not there. */
export function renderCleanup(cfg: Pick<NftRenderConfig, 'family'>): Transaction {
  const tx = new Transaction(nftFamily(cfg), TABLE);
  tx.add(table());
  tx.delete(table());
  return tx;
}
