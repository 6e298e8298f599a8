/**
 * The iptables backend. A full sync reads the current state once
 * (iptables-save: missing jump rules, stale chains), renders every service
 * port and rewrites every chain we own; a partial sync renders only the
 * changed service ports and rewrites only what changed (see partial.ts),
 * without reading the kernel. Either way: one iptables-restore transaction.
 * A full sync's input is as large as the ruleset, so it is rendered piece
 * by piece as iptables-restore reads it, never held whole (see
 * FullRestoreInput, restoreChunks); what is kept for partial syncs is small
 * (see WrittenState).
 */
import type { ChangeSet, IPFamily, Snapshot } from '../../agent/model/types.js';
import { resolveNodePortAddresses } from '../../agent/model/node-port-addresses.js';
import type { Backend, SyncResult } from '../types.js';
import { renderCleanup } from './cleanup.js';
import { isServiceChain } from './names.js';
import { applyPlan, planPartial } from './partial.js';
import type { WrittenState } from './partial.js';
import { CANARY_CHAIN, CANARY_TABLES, FullRestoreInput, renderFull } from './render.js';
import type { FullRenderOptions, RenderConfig, RestoreInput } from './render.js';
import { missingJumps, parseSaved } from './saved-state.js';
import { restoreChunks } from './tool.js';
import type { IptablesTool } from './tool.js';

/** Upstream's threshold: above this many endpoints in total, per-endpoint comments are left out. */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

const ZONE_LABEL = 'topology.kubernetes.io/zone';

/**
 * The render configuration for one sync: the static one plus what the
 * snapshot says about this node (zone, primary IP) and the cluster's size.
 * When it differs from the last sync's, every service port may render
 * differently, so that sync must be full (as upstream does when the node's
 * topology labels change).
 */
export function effectiveConfig(base: RenderConfig, snapshot: Snapshot): RenderConfig {
  const family = base.family ?? 'IPv4';
  const zone = snapshot.node?.labels[ZONE_LABEL];
  const nodeIP = snapshot.node?.addresses.find((a) => a.includes(':') === (family === 'IPv6'));
  let nodePortAddresses: readonly string[] | undefined;
  if (base.nodePortSpec && base.nodePortSpec.spec.length > 0) {
    const primary: Partial<Record<IPFamily, string>> = {};
    for (const a of snapshot.node?.addresses ?? []) primary[a.includes(':') ? 'IPv6' : 'IPv4'] ??= a;
    nodePortAddresses = resolveNodePortAddresses(base.nodePortSpec.spec, family, base.nodePortSpec.localAddresses, primary);
  }
  return {
    ...base,
    ...(nodePortAddresses !== undefined ? { nodePortAddresses } : {}),
    largeClusterMode: snapshot.endpointCount > LARGE_CLUSTER_ENDPOINTS,
    ...(zone !== undefined && base.nodeZone === undefined ? { nodeZone: zone } : {}),
    ...(nodeIP !== undefined && base.nodeIP === undefined ? { nodeIP } : {}),
  };
}

function sameConfig(a: RenderConfig, b: RenderConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class IptablesBackend implements Backend {
  readonly mode = 'iptables';
  private written: (WrittenState & { cfg: RenderConfig }) | undefined;

  constructor(
    private readonly tool: IptablesTool,
    private readonly cfg: RenderConfig,
  ) {}

  /** Renders the input a full sync would apply, reading (never writing) the current state. */
  async plan(snapshot: Snapshot): Promise<RestoreInput> {
    return renderFull(snapshot, effectiveConfig(this.cfg, snapshot), await this.fullOptions());
  }

  /** Reads the current state: missing jumps, stale chains (the input itself is rendered as it is written). */
  private async fullOptions(): Promise<FullRenderOptions> {
    const state = parseSaved(await this.tool.save());
    const stale: string[] = [];
    for (const [table, chains] of state.chains) for (const c of chains) if (isServiceChain(c)) stale.push(`${table}/${c}`);
    return { missingJumps: missingJumps(state), staleServiceChains: stale };
  }

  async sync(snapshot: Snapshot, changes: ChangeSet, opts: { full: boolean }): Promise<SyncResult> {
    const cfg = effectiveConfig(this.cfg, snapshot);
    if (opts.full || !this.written || !sameConfig(cfg, this.written.cfg)) return this.syncFull(snapshot, cfg);
    const plan = planPartial(this.written, changes.servicePorts, (k) => snapshot.servicePorts.get(k), cfg);
    let toolMs = 0;
    if (!plan.empty) {
      const start = performance.now();
      await this.tool.restore(plan.input.text);
      toolMs = performance.now() - start;
    }
    applyPlan(this.written, plan);
    return { full: false, bytes: plan.empty ? 0 : Buffer.byteLength(plan.input.text), rules: plan.input.ruleCount, rulesByTable: plan.input.rulesByTable, toolMs };
  }

  private async syncFull(snapshot: Snapshot, cfg: RenderConfig): Promise<SyncResult> {
    // Until this succeeds, what the kernel holds is unknown: the next sync must be full too.
    this.written = undefined;
    const full = new FullRestoreInput(snapshot.servicePorts, cfg, await this.fullOptions());
    const start = performance.now();
    await restoreChunks(this.tool, full);
    // The input is rendered while iptables-restore reads it: that time is the agent's.
    const toolMs = Math.max(0, performance.now() - start - full.renderMs);
    if (!full.done) throw new Error('iptables-restore succeeded without reading its whole input');
    this.written = { ports: full.ports, cfg };
    return { full: true, bytes: full.bytes, rules: full.ruleCount, rulesByTable: full.rulesByTable, toolMs };
  }

  /**
   * False when a canary chain written by the last full sync has disappeared:
   * someone flushed or deleted our rules, and only a full sync repairs that.
   * True before the first full sync.
   */
  async canaryIntact(): Promise<boolean> {
    if (!this.written) return true;
    for (const table of CANARY_TABLES) if (!(await this.tool.chainExists(table, CANARY_CHAIN))) return false;
    return true;
  }

  async cleanup(): Promise<void> {
    this.written = undefined;
    const text = renderCleanup(parseSaved(await this.tool.save()));
    if (text !== undefined) await this.tool.restore(text);
  }
}
