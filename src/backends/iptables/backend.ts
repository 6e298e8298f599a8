/**
 * The iptables backend: reads the current state once (iptables-save), renders
 * the whole ruleset for the snapshot, and applies it in one iptables-restore
 * transaction.
 */
import type { ChangeSet, Snapshot } from '../../agent/model/types.js';
import type { Backend, SyncResult } from '../types.js';
import { renderCleanup } from './cleanup.js';
import { isServiceChain } from './names.js';
import { renderFull } from './render.js';
import type { RenderConfig, RestoreInput } from './render.js';
import { missingJumps, parseSaved } from './saved-state.js';
import type { IptablesTool } from './tool.js';

export class IptablesBackend implements Backend {
  readonly mode = 'iptables';

  constructor(
    private readonly tool: IptablesTool,
    private readonly cfg: RenderConfig,
  ) {}

  /** Renders the input a sync would apply, reading (never writing) the current state. */
  async plan(snapshot: Snapshot): Promise<RestoreInput> {
    const state = parseSaved(await this.tool.save());
    const stale: string[] = [];
    for (const [table, chains] of state.chains) for (const c of chains) if (isServiceChain(c)) stale.push(`${table}/${c}`);
    return renderFull(snapshot, this.cfg, { missingJumps: missingJumps(state), staleServiceChains: stale });
  }

  async sync(snapshot: Snapshot, _changes: ChangeSet, _opts: { full: boolean }): Promise<SyncResult> {
    // Every sync is full for now: partial syncs come with the change-set renderer.
    const input = await this.plan(snapshot);
    const start = performance.now();
    await this.tool.restore(input.text);
    return { full: true, bytes: Buffer.byteLength(input.text), rules: input.ruleCount, rulesByTable: input.rulesByTable, toolMs: performance.now() - start };
  }

  async cleanup(): Promise<void> {
    const text = renderCleanup(parseSaved(await this.tool.save()));
    if (text !== undefined) await this.tool.restore(text);
  }
}
