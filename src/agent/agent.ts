/**
 * Wires the data flow together: source → store → sync runner → backend, and
 * implements the agent's modes (run, --once, --dry-run, --cleanup).
 */
import type { AgentOptions } from './options.js';
import type { Logger } from './log.js';
import { ClusterStore } from './model/store.js';
import { ManifestsSource } from './sources/manifests/source.js';
import { SyncRunner } from './sync/runner.js';
import { IptablesBackend } from '../backends/iptables/backend.js';
import { execIptables } from '../backends/iptables/tool.js';
import type { IptablesTool } from '../backends/iptables/tool.js';
import { RestoreError } from '../backends/iptables/tool.js';

export interface AgentDeps {
  log: Logger;
  /** Where --dry-run prints. */
  out: (text: string) => void;
  iptables?: IptablesTool;
}

function makeBackend(opts: AgentOptions, tool: IptablesTool): IptablesBackend {
  return new IptablesBackend(tool, {
    ...(opts.clusterCIDR ? { clusterCIDR: opts.clusterCIDR } : {}),
    masqueradeAll: opts.masqueradeAll,
    masqueradeBit: opts.masqueradeBit,
    randomFully: true,
  });
}

/** A read-only view of the real tool: reads the live state when it can, never writes. */
function dryRunTool(real: IptablesTool, log: Logger): IptablesTool {
  return {
    async save() {
      try {
        return await real.save();
      } catch (err) {
        log.info(0, 'cannot read current rules; printing the input for an empty ruleset', { err: (err as Error).message });
        return '';
      }
    },
    async restore() {
      throw new Error('dry run: refusing to apply');
    },
  };
}

/** Runs a one-shot mode; resolves to the exit code. */
export async function runOneShot(opts: AgentOptions, deps: AgentDeps): Promise<number> {
  const { log } = deps;
  const tool = deps.iptables ?? execIptables();
  if (opts.cleanup) {
    await makeBackend(opts, tool).cleanup();
    log.info(0, 'removed all kube-proxy-ts rules and chains', { mode: 'iptables' });
    return 0;
  }
  const store = new ClusterStore(opts.hostnameOverride);
  const source = new ManifestsSource({ dir: opts.manifests!, store, log });
  await source.load();
  const { snapshot, changes } = store.snapshot();
  if (opts.dryRun) {
    const input = await makeBackend(opts, dryRunTool(tool, log)).plan(snapshot);
    deps.out(input.text);
    return 0;
  }
  const result = await makeBackend(opts, tool).sync(snapshot, changes, { full: true });
  store.commit(changes);
  log.info(0, 'synced rules once', { servicePorts: snapshot.servicePorts.size, rules: result.rules, bytes: result.bytes, toolMs: Math.round(result.toolMs) });
  return 0;
}

export interface RunningAgent {
  /** Resolves after the first successful sync. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the long-running agent. */
export async function startAgent(opts: AgentOptions, deps: AgentDeps): Promise<RunningAgent> {
  const { log } = deps;
  const tool = deps.iptables ?? execIptables();
  const backend = makeBackend(opts, tool);
  const store = new ClusterStore(opts.hostnameOverride);
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const runner = new SyncRunner({
    minSyncPeriodMs: opts.minSyncPeriodMs,
    syncPeriodMs: opts.syncPeriodMs,
    async run({ full }) {
      const start = performance.now();
      const { snapshot, changes } = store.snapshot();
      const r = await backend.sync(snapshot, changes, { full });
      store.commit(changes);
      log.info(2, 'synced rules', {
        full: r.full,
        servicePorts: snapshot.servicePorts.size,
        changed: changes.servicePorts.size,
        rules: r.rules,
        bytes: r.bytes,
        ms: Math.round(performance.now() - start),
        toolMs: Math.round(r.toolMs),
      });
      markReady();
    },
    onError(err, retryInMs) {
      const fields = { retryInMs, err: err instanceof Error ? err.message : String(err) };
      log.error('sync failed; the previous rules stay in place', fields);
      if (err instanceof RestoreError && err.lineText !== undefined) log.info(2, 'failing restore input line', { line: err.line, text: err.lineText });
    },
  });
  const source = new ManifestsSource({ dir: opts.manifests!, store, log });
  // Nothing syncs before the source's first complete load.
  await source.load();
  store.onChange(() => runner.trigger());
  source.watch();
  runner.triggerFull();
  log.info(0, 'kube-proxy-ts started', { mode: opts.proxyMode, node: opts.hostnameOverride, manifests: opts.manifests, services: store.serviceCount });
  return {
    ready,
    async stop() {
      source.stop();
      await runner.stop();
    },
  };
}
