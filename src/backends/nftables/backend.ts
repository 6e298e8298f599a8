/**
 * The nftables backend: one instance per address family, owning the table
 * `ip kube-proxy` or `ip6 kube-proxy` (and nothing else). A full sync lists
 * the table's object names once and rewrites it whole; a partial sync
 * applies only what the changed service ports need, from what this backend
 * remembers writing (never reading the kernel). Either way: one `nft -f -`
 * transaction.
 */
import { release } from 'node:os';
import type { ChangeSet, Snapshot } from '../../agent/model/types.js';
import type { Backend, SyncResult } from '../types.js';
import { effectiveConfig, familyServiceCIDRs, nftFamily, sameConfig } from './config.js';
import type { NftRenderConfig } from './config.js';
import { CLUSTER_IPS_CHECK, CLUSTER_IPS_SET, TABLE } from './names.js';
import type { NftApplier } from './nft/applier.js';
import { chain } from './nft/objects.js';
import { applyPlan, planPartial } from './partial.js';
import type { WrittenState } from './partial.js';
import type { RenderedServicePort } from './render-service.js';
import { planFull, renderAll, renderCleanup } from './render.js';
import type { Transaction } from './nft/transaction.js';
import { Transaction as Tx } from './nft/transaction.js';

export interface NftBackendOptions {
  /**
   * Flush stale chains in the sync that stops using them but delete them in
   * a later one, at least `staleChainDelayMs` later (upstream's way: before
   * Linux 6.2 a chain a just-deleted map element pointed at still counts as
   * used for a moment). Default: on for kernels before 6.2.
   */
  deferStaleChains?: boolean;
  staleChainDelayMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Whether `uname -r` is older than 6.2. */
export function kernelBefore62(rel: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj < 6 || (maj === 6 && min < 2);
}

const withoutCIDRs = (c: NftRenderConfig): NftRenderConfig => ({ ...c, serviceCIDRs: [] });

/** SyncResult of a transaction: rules and elements written; by object kind, every operation. */
function resultOf(tx: Transaction, full: boolean, toolMs: number): SyncResult {
  const counts = tx.counts();
  const byKind: Record<string, number> = {};
  for (const [verbKind, n] of Object.entries(counts)) {
    const kind = verbKind.slice(verbKind.indexOf(' ') + 1);
    byKind[kind] = (byKind[kind] ?? 0) + n;
  }
  const rules = (counts['add rule'] ?? 0) + (counts['add element'] ?? 0);
  return { full, bytes: tx.isEmpty ? 0 : tx.byteLength(), rules, rulesByTable: byKind, toolMs };
}

export class NftablesBackend implements Backend {
  readonly mode = 'nftables';
  private written: WrittenState | undefined;
  private baseChainsReset = false;
  /** The cluster-ips set's kernel handle after the last full sync (see canaryIntact). */
  private canary: number | undefined;
  /** Chains flushed as stale and waiting to be deleted (deferred mode), with when. */
  private readonly pendingDeletes = new Map<string, number>();
  private readonly defer: boolean;
  private readonly delayMs: number;
  private readonly now: () => number;

  constructor(
    private readonly nft: NftApplier,
    private cfg: NftRenderConfig,
    opts: NftBackendOptions = {},
  ) {
    this.defer = opts.deferStaleChains ?? kernelBefore62();
    this.delayMs = opts.staleChainDelayMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The cluster's ServiceCIDRs changed (from the ServiceCIDR objects): the
   * next sync rewrites the cluster-ips-check chain (a partial sync is enough).
   */
  setServiceCIDRs(cidrs: readonly string[]): void {
    this.cfg = { ...this.cfg, serviceCIDRs: [...cidrs] };
  }

  get family(): 'ip' | 'ip6' | 'inet' {
    return nftFamily(this.cfg);
  }

  /** The transaction a full sync would apply now (reads the table's object names, writes nothing): for --dry-run. */
  async plan(snapshot: Snapshot): Promise<{ tx: Transaction; text: string }> {
    const cfg = effectiveConfig(this.cfg, snapshot);
    const existing = await this.nft.list(nftFamily(cfg), TABLE);
    const { tx } = planFull(renderAll(snapshot, cfg), cfg, { existing, resetBaseChains: !this.baseChainsReset, deferStaleChains: this.defer });
    return { tx, text: tx.toText() };
  }

  async sync(snapshot: Snapshot, changes: ChangeSet, opts: { full: boolean }): Promise<SyncResult> {
    const cfg = effectiveConfig(this.cfg, snapshot);
    await this.deletePendingChains();
    if (opts.full || !this.written || !sameConfig(withoutCIDRs(cfg), withoutCIDRs(this.written.cfg))) return this.syncFull(snapshot, cfg);
    const cidrsChanged = familyServiceCIDRs(cfg).join() !== familyServiceCIDRs(this.written.cfg).join();
    const plan = planPartial(this.written, changes.servicePorts, (k) => snapshot.servicePorts.get(k), cfg, {
      deferStaleChains: this.defer,
      rewriteFixedChains: cidrsChanged ? [CLUSTER_IPS_CHECK] : [],
    });
    const start = performance.now();
    try {
      await this.nft.apply(plan.tx);
    } catch (err) {
      // What the kernel holds is unknown now: the next sync must be full.
      this.written = undefined;
      throw err;
    }
    const toolMs = plan.tx.isEmpty ? 0 : performance.now() - start;
    applyPlan(this.written, plan);
    this.written.cfg = cfg;
    this.noteStale(plan.staleChains, plan.updates);
    return resultOf(plan.tx, false, toolMs);
  }

  private async syncFull(snapshot: Snapshot, cfg: NftRenderConfig): Promise<SyncResult> {
    // Until this succeeds, what the kernel holds is unknown: the next sync must be full too.
    this.written = undefined;
    const existing = await this.nft.list(nftFamily(cfg), TABLE);
    const plan = planFull(renderAll(snapshot, cfg), cfg, { existing, resetBaseChains: !this.baseChainsReset, deferStaleChains: this.defer });
    const start = performance.now();
    await this.nft.apply(plan.tx);
    const toolMs = performance.now() - start;
    this.baseChainsReset = true;
    this.written = { cfg, ports: new Map(snapshot.servicePorts), elements: plan.elements, shared: plan.shared };
    this.canary = await this.nft.setHandle(nftFamily(cfg), TABLE, CLUSTER_IPS_SET).catch(() => undefined);
    this.pendingDeletes.clear();
    if (this.defer) for (const c of plan.staleChains) this.pendingDeletes.set(c, this.now());
    return resultOf(plan.tx, true, toolMs);
  }

  private noteStale(stale: readonly string[], updates: ReadonlyMap<string, RenderedServicePort | undefined>): void {
    if (!this.defer) return;
    for (const c of stale) this.pendingDeletes.set(c, this.now());
    // A chain used again is no longer pending: only a port this sync rewrote can have taken it back.
    if (this.pendingDeletes.size === 0 || !this.written) return;
    for (const p of updates.values()) for (const c of p?.chains ?? []) this.pendingDeletes.delete(c.name);
    for (const name of [...this.pendingDeletes.keys()]) if (this.written.shared.has(name)) this.pendingDeletes.delete(name);
  }

  /** Deferred mode: deletes the stale chains flushed at least the delay ago, in their own transaction. */
  private async deletePendingChains(): Promise<void> {
    if (this.pendingDeletes.size === 0) return;
    const due = [...this.pendingDeletes].filter(([, t]) => this.now() - t >= this.delayMs).map(([c]) => c);
    if (due.length === 0) return;
    const tx = new Tx(this.family, TABLE);
    for (const c of due.sort()) {
      // add + delete: no error if someone removed it meanwhile.
      tx.add(chain(c));
      tx.delete(chain(c));
    }
    try {
      await this.nft.apply(tx);
      for (const c of due) this.pendingDeletes.delete(c);
    } catch {
      // Still referenced or the table is gone: the next full sync lists and deletes what is stale.
      for (const c of due) this.pendingDeletes.delete(c);
    }
  }

  /**
   * False when our table has been deleted (and maybe re-created) since the
   * last full sync, e.g. by `nft flush ruleset`: only a full sync repairs
   * that. True before the first full sync. Compares the kernel handle of
   * the cluster-ips set with the one after the last full sync: one
   * `nft -t list set`, milliseconds at any table size (nft 1.0.6 reads its
   * whole cache for `list tables` or `list chain`).
   */
  async canaryIntact(): Promise<boolean> {
    if (!this.written || this.canary === undefined) return true;
    return (await this.nft.setHandle(this.family, TABLE, CLUSTER_IPS_SET)) === this.canary;
  }

  /** Deletes this family's kube-proxy table, and nothing else. */
  async cleanup(): Promise<void> {
    this.written = undefined;
    this.pendingDeletes.clear();
    await this.nft.apply(renderCleanup(this.cfg));
  }
}

/** Deletes both families' kube-proxy tables (as upstream's CleanupLeftovers), leaving every other table alone. */
export async function cleanupNftables(nft: NftApplier): Promise<void> {
  for (const family of ['IPv4', 'IPv6'] as const) await nft.apply(renderCleanup({ family }));
}
