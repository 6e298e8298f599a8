/**
 * Partial syncs: given what the last successful sync wrote and the service
 * ports that changed, render an iptables-restore input that rewrites only
 * the per-service chains whose rules changed, deletes the chains no longer
 * wanted, and rewrites a shared chain (KUBE-SERVICES, KUBE-NODEPORTS, ...)
 * only when a changed port's contribution to it changed. An endpoint added
 * or removed therefore never touches KUBE-SERVICES. Pure.
 *
 * The kernel after a partial sync must equal the kernel after a full sync of
 * the same snapshot; tests check exactly that.
 */
import type { ServicePort } from '../../agent/model/types.js';
import type { SharedChainId } from './layout.js';
import { SHARED_CHAINS } from './layout.js';
import type { RenderConfig, WrittenPort } from './render.js';
import { writeSharedChain } from './render.js';
import { renderServicePort } from './render-service.js';
import type { ServiceChain } from './render-service.js';
import { RestoreInputBuilder } from './restore-input.js';
import type { BuiltInput } from './restore-input.js';

/**
 * What the kernel holds, as far as this agent wrote it: per service port,
 * the ServicePort rendered and its shared-chain rules (see WrittenPort). The
 * per-service chains are not kept (they are most of the ruleset): a changed
 * port's previous chains are rendered again from its previous ServicePort,
 * with the same configuration (a sync with another one is full).
 */
export interface WrittenState {
  ports: Map<string, WrittenPort>;
}

export interface PartialPlan {
  input: BuiltInput;
  /** What to record once the input has been applied (undefined: the port is gone). */
  updates: Map<string, WrittenPort | undefined>;
  /** Shared chains rewritten. */
  sharedRewritten: SharedChainId[];
  /** Whether there is anything to apply at all. */
  empty: boolean;
}

const chainId = (c: { table: string; name: string }): string => `${c.table}/${c.name}`;

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((r, i) => r === y[i]);
}

export function planPartial(
  written: WrittenState,
  changed: Iterable<string>,
  lookup: (key: string) => ServicePort | undefined,
  cfg: RenderConfig,
): PartialPlan {
  const updates = new Map<string, WrittenPort | undefined>();
  const b = new RestoreInputBuilder();
  const dirtyShared = new Set<SharedChainId>();
  const deletions: ServiceChain[] = [];
  for (const key of changed) {
    const sp = lookup(key);
    const was = written.ports.get(key);
    // The very object written: nothing to do (e.g. a change that was undone before this sync).
    if (was !== undefined && was.sp === sp) continue;
    const next = sp ? renderServicePort(sp, cfg) : undefined;
    const prev = was ? renderServicePort(was.sp, cfg) : undefined;
    updates.set(key, sp && next ? { sp, shared: next.shared } : undefined);
    const prevChains = new Map((prev?.chains ?? []).map((c) => [chainId(c), c]));
    for (const c of next?.chains ?? []) {
      const old = prevChains.get(chainId(c));
      if (!old || !sameRules(old.rules, c.rules)) b.chain(c.table, c.name, c.rules);
      prevChains.delete(chainId(c));
    }
    deletions.push(...prevChains.values());
    for (const id of new Set([...(was?.shared.keys() ?? []), ...(next?.shared.keys() ?? [])])) {
      if (!sameRules(was?.shared.get(id), next?.shared.get(id))) dirtyShared.add(id);
    }
  }
  const sharedRewritten = SHARED_CHAINS.filter((sc) => dirtyShared.has(sc.id)).map((sc) => sc.id);
  if (sharedRewritten.length > 0) {
    // A shared chain is rewritten whole, from every port's contribution in key order.
    const keys = new Set(written.ports.keys());
    for (const [k, v] of updates) (v ? keys.add(k) : keys.delete(k));
    const ordered = [...keys].sort().map((k) => (updates.has(k) ? updates.get(k)! : written.ports.get(k)!));
    for (const id of sharedRewritten) writeSharedChain(b, id, ordered, cfg);
  }
  for (const c of deletions) b.delete(c.table, c.name);
  return { input: b.build(), updates, sharedRewritten, empty: b.isEmpty };
}

/** Records an applied plan. */
export function applyPlan(written: WrittenState, plan: PartialPlan): void {
  for (const [k, v] of plan.updates) {
    if (v) written.ports.set(k, v);
    else written.ports.delete(k);
  }
}
