/**
 * Wires the data flow together: source → store → sync runner → backend, with
 * the health and metrics servers around it, and implements the agent's modes
 * (run, --once, --dry-run, --cleanup).
 */
import { collectGarbage } from './heap.js';
import type { AgentOptions } from './options.js';
import type { Logger } from './log.js';
import type { ClusterSink } from './model/store.js';
import { addressesForNodePorts, enableRouteLocalnet } from './pipeline.js';
import type { FamilyPipeline, Tools } from './pipeline.js';
import { cleanupAllModes, cleanupOtherMode, injected, isKernelToolError, modePipelines, StartupError } from './modes.js';
import type { ChangeKind } from './model/types.js';
import { ManifestsSource } from './sources/manifests/source.js';
import { KubernetesSource } from './sources/kubernetes/source.js';
import { loadKubeConfig } from './sources/kubernetes/kubeconfig.js';
import { overlappingServiceCIDRs } from './sources/kubernetes/service-cidrs.js';
import { SyncRunner } from './sync/runner.js';
import { ProxyHealth, nodeHealthInfoFromObject } from './server/health.js';
import { HealthzServer } from './server/healthz-server.js';
import { MetricsServer } from './server/metrics-server.js';
import { ProxyMetrics } from './server/metrics.js';
import { ServiceHealthServer, healthCheckInputs } from './server/service-health.js';
import { planConntrackCleanup, runConntrackCleanup } from './conntrack/index.js';
import type { ServicePort } from './model/types.js';

export { StartupError } from './modes.js';

export interface AgentDeps extends Tools {
  log: Logger;
  /** Where --dry-run prints. */
  out: (text: string) => void;
}

/** How often the canary chains are checked (at most; never less often than syncPeriod). */
const CANARY_INTERVAL_MS = 5000;

interface Source {
  /** Resolves when the store holds the source's first complete view. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

function makeSource(
  opts: AgentOptions,
  store: ClusterSink,
  log: Logger,
  metrics?: ProxyMetrics,
  health?: ProxyHealth,
  onServiceCIDRs?: (cidrs: string[]) => void,
): { source: Source; kube?: KubernetesSource } {
  if (opts.manifests !== undefined) {
    const m = new ManifestsSource({ dir: opts.manifests, store, log, ...(metrics ? { onInvalid: (kind: string) => metrics.recordInvalidObject(kind, 'manifests') } : {}) });
    return {
      source: {
        async start() {
          await m.load();
          m.watch();
        },
        async stop() {
          m.stop();
        },
      },
    };
  }
  const kube = new KubernetesSource({
    kc: loadKubeConfig({ ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), ...(opts.master ? { master: opts.master } : {}) }),
    store,
    log,
    ...(opts.serviceProxyName ? { serviceProxyName: opts.serviceProxyName } : {}),
    ...(metrics ? { onInvalid: (kind: string) => metrics.recordInvalidObject(kind, 'apiserver') } : {}),
    ...(health ? { onNode: (node: unknown) => health.syncNode(node ? nodeHealthInfoFromObject(node) : null) } : {}),
    ...(onServiceCIDRs ? { onServiceCIDRs } : {}),
  });
  return { source: kube, kube };
}

/** Runs a one-shot mode; resolves to the exit code. */
export async function runOneShot(opts: AgentOptions, deps: AgentDeps): Promise<number> {
  const { log } = deps;
  if (opts.cleanup) return cleanupAllModes(deps, log);
  const { pipelines, stores } = await modePipelines(opts, deps, log, { dryRun: opts.dryRun, localAddresses: await addressesForNodePorts(opts, log) });
  if (!opts.dryRun) await prepareHost(opts, deps, log);
  const { source, kube } = makeSource(opts, stores, log, undefined, undefined, (cidrs) => feedServiceCIDRs(pipelines, cidrs));
  try {
    await source.start();
    if (kube) checkServiceCIDRs(opts, kube);
  } finally {
    await source.stop();
  }
  // --dry-run prints the IPv6 input only when there is something to proxy over IPv6.
  const shown = pipelines.filter((p) => p.family === 'IPv4' || p.store.snapshot().snapshot.servicePorts.size > 0);
  for (const p of pipelines) {
    const { snapshot, changes } = p.store.snapshot();
    if (opts.dryRun) {
      if (!shown.includes(p)) continue;
      if (shown.length > 1) deps.out(`${dryRunHeader(opts, p.family)}\n`);
      deps.out((await p.backend.plan(snapshot)).text);
      continue;
    }
    const result = await p.backend.sync(snapshot, changes, { full: true });
    p.store.commit(changes);
    log.info(0, 'synced rules once', { mode: opts.proxyMode, family: p.family, servicePorts: snapshot.servicePorts.size, rules: result.rules, bytes: result.bytes, toolMs: Math.round(result.toolMs) });
  }
  return 0;
}

function dryRunHeader(opts: AgentOptions, family: string): string {
  if (opts.proxyMode === 'nftables') return `# nft -f input (table ${family === 'IPv4' ? 'ip' : 'ip6'} kube-proxy)`;
  return `# ${family === 'IPv4' ? 'iptables' : 'ip6tables'}-restore --noflush input`;
}

/** Before the first sync: the other mode's rules go, and iptables mode's sysctl (only on the real host). */
async function prepareHost(opts: AgentOptions, deps: AgentDeps, log: Logger): Promise<void> {
  await cleanupOtherMode(opts, deps, log);
  // Only with the real tools: injected ones (tests) must not touch this host's sysctls.
  if (opts.proxyMode === 'iptables' && !injected(opts, deps)) await enableRouteLocalnet(opts, log);
}

/** Hands the ServiceCIDRs to the backends that use them; true when one did (its rules must be synced). */
function feedServiceCIDRs(pipelines: readonly FamilyPipeline[], cidrs: readonly string[]): boolean {
  let used = false;
  for (const p of pipelines) {
    if (!p.backend.setServiceCIDRs) continue;
    p.backend.setServiceCIDRs(cidrs);
    used = true;
  }
  return used;
}

function checkServiceCIDRs(opts: AgentOptions, kube: KubernetesSource): void {
  if (!opts.clusterCIDR) return;
  const overlaps = overlappingServiceCIDRs(opts.clusterCIDR, kube.getServiceCIDRs());
  if (overlaps.length > 0) {
    throw new StartupError(
      `clusterCIDR ${opts.clusterCIDR} overlaps the service range ${overlaps.map((o) => `${o.cidr} (ServiceCIDR ${o.name})`).join(', ')}: pod and service ranges must never overlap`,
    );
  }
}

export interface RunningAgent {
  /** Resolves after the first successful sync. */
  ready: Promise<void>;
  healthz: HealthzServer;
  metricsServer: MetricsServer;
  metrics: ProxyMetrics;
  stop(): Promise<void>;
}

/** Starts the long-running agent. */
export async function startAgent(opts: AgentOptions, deps: AgentDeps): Promise<RunningAgent> {
  const { log } = deps;
  const { pipelines, stores } = await modePipelines(opts, deps, log, { localAddresses: await addressesForNodePorts(opts, log) });
  await prepareHost(opts, deps, log);
  const health = ProxyHealth.forSyncPeriod(opts.syncPeriodMs);
  const metrics = new ProxyMetrics({ mode: opts.proxyMode });
  const healthz = new HealthzServer({ health, metrics });
  const metricsServer = new MetricsServer({ metrics, proxyMode: opts.proxyMode });
  await healthz.start(opts.healthzBindAddress);
  try {
    await metricsServer.start(opts.metricsBindAddress);
  } catch (err) {
    await healthz.close();
    throw err;
  }

  const serviceHealth = new ServiceHealthServer({ isProxyHealthy: () => health.isHealthy(), log, nodeName: opts.hostnameOverride });
  /** Per family, the service ports the kernel holds (the last applied snapshot), for conntrack cleanup. */
  const applied = new Map<string, ReadonlyMap<string, ServicePort>>();
  let conntrackQueue: Promise<void> = Promise.resolve();
  let listening = false;
  const pending = { services: 0, endpoints: 0 };
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const memoryMiB = (): Record<string, number> => {
    const m = process.memoryUsage();
    return { rssMiB: Math.round(m.rss / 2 ** 20), heapUsedMiB: Math.round(m.heapUsed / 2 ** 20), heapTotalMiB: Math.round(m.heapTotal / 2 ** 20), externalMiB: Math.round(m.external / 2 ** 20) };
  };
  const compactHeap = (when: string): void => {
    const start = performance.now();
    if (collectGarbage()) log.info(4, 'collected garbage', { when, ms: Math.round(performance.now() - start), ...memoryMiB() });
  };
  const runner = new SyncRunner({
    minSyncPeriodMs: opts.minSyncPeriodMs,
    syncPeriodMs: opts.syncPeriodMs,
    async run({ full }) {
      let wroteFull = false;
      for (const p of pipelines) {
        const start = performance.now();
        const { snapshot, changes } = p.store.snapshot();
        try {
          const r = await p.backend.sync(snapshot, changes, { full });
          p.store.commit(changes);
          wroteFull ||= r.full;
          const seconds = (performance.now() - start) / 1000;
          const now = Date.now();
          health.updated(p.family);
          metrics.recordSync({ full: r.full, seconds, ok: true, at: now, family: p.family });
          // A partial sync writes only part of the rules: the table totals are known after full syncs.
          for (const [table, n] of Object.entries(r.rulesByTable)) metrics.setIptablesRules(table, r.full ? { total: n, lastSync: n } : { lastSync: n }, p.family);
          for (const t of changes.triggerTimes) {
            metrics.recordNetworkProgramming(t, now, p.family);
            log.info(4, 'network programming latency', { family: p.family, ms: now - t });
          }
          // UDP flows to endpoints that went away (or to services that just got one) would stay
          // stuck in conntrack: delete them now that the new rules are in place.
          const prev = applied.get(p.family) ?? new Map<string, ServicePort>();
          const changed = r.full ? new Set([...prev.keys(), ...snapshot.servicePorts.keys()]) : changes.servicePorts;
          applied.set(p.family, snapshot.servicePorts);
          const deletions = planConntrackCleanup(prev, snapshot.servicePorts, changed);
          // In the background, one batch after another: deleting entries must not delay the next sync.
          // Only with the real tools: injected ones (tests) must not touch this host's conntrack table.
          if (deletions.length > 0 && !injected(opts, deps)) conntrackQueue = conntrackQueue.then(() => runConntrackCleanup(deletions, { log, family: p.family })).then(() => undefined);
          log.info(2, 'synced rules', {
            family: p.family,
            full: r.full,
            servicePorts: snapshot.servicePorts.size,
            changed: changes.servicePorts.size,
            rules: r.rules,
            bytes: r.bytes,
            ms: Math.round(seconds * 1000),
            toolMs: Math.round(r.toolMs),
          });
        } catch (err) {
          metrics.recordSync({ full, seconds: (performance.now() - start) / 1000, ok: false, family: p.family });
          if (isKernelToolError(err)) metrics.recordRestoreFailure({ partial: !full, family: p.family });
          throw err;
        }
      }
      metrics.setPendingChanges({ services: 0, endpoints: 0 });
      pending.services = 0;
      pending.endpoints = 0;
      // Health-check node ports of externalTrafficPolicy=Local services, over every family.
      const { services, localEndpoints } = healthCheckInputs([...applied.values()].flatMap((m) => [...m.values()]));
      await serviceHealth.syncServices(services);
      serviceHealth.syncEndpoints(localEndpoints);
      markReady();
      if (wroteFull) compactHeap('after a full sync');
    },
    onError(err, retryInMs) {
      const fields = { retryInMs, err: err instanceof Error ? err.message : String(err) };
      log.error('sync failed; the previous rules stay in place', fields);
    },
  });

  const { source, kube } = makeSource(opts, stores, log, metrics, health, (cidrs) => {
    if (feedServiceCIDRs(pipelines, cidrs) && listening) runner.trigger();
  });
  // Every family's store sees the same changes: count and trigger from the first.
  pipelines[0]!.store.onChange((kind: ChangeKind) => {
    if (kind === 'Service') {
      metrics.recordServiceChanges();
      pending.services++;
    } else if (kind === 'EndpointSlice') {
      metrics.recordEndpointChanges();
      pending.endpoints++;
    }
    // Nothing syncs before the source's first complete view.
    if (!listening) return;
    for (const p of pipelines) health.queuedUpdate(p.family);
    metrics.recordQueuedSync();
    metrics.setPendingChanges(pending);
    runner.trigger();
  });
  // Upstream starts judging health when the sync loop starts.
  for (const p of pipelines) health.updated(p.family);
  log.info(0, 'kube-proxy-ts starting', {
    mode: opts.proxyMode,
    node: opts.hostnameOverride,
    source: opts.manifests !== undefined ? `manifests:${opts.manifests}` : 'apiserver',
    healthz: healthz.address ?? 'off',
    metrics: metricsServer.address ?? 'off',
  });
  const stopServers = async (): Promise<void> => {
    await Promise.all([healthz.close(), metricsServer.close(), serviceHealth.close()]);
  };
  try {
    await source.start();
    if (kube) checkServiceCIDRs(opts, kube);
  } catch (err) {
    await source.stop();
    await stopServers();
    throw err;
  }
  listening = true;
  // The initial lists are in the model: what they were parsed from is garbage now, and the first full sync comes next.
  compactHeap('after the initial lists');
  for (const p of pipelines) health.queuedUpdate(p.family);
  runner.triggerFull();
  // The canary: if our chains vanish (someone ran iptables -F, a firewall reload), resync in full.
  const canaryTimer = setInterval(() => {
    void Promise.all(pipelines.map((p) => p.backend.canaryIntact())).then((all) => all.every(Boolean)).then(
      (intact) => {
        if (intact) return;
        const canary = opts.proxyMode === 'nftables' ? { table: 'kube-proxy', set: 'cluster-ips' } : { canary: 'KUBE-PROXY-CANARY' };
        log.warn(`our ${opts.proxyMode} rules were flushed or deleted by someone else; doing a full sync`, canary);
        runner.triggerFull();
      },
      (err: Error) => log.info(2, 'canary check failed', { err: err.message }),
    );
  }, Math.min(opts.syncPeriodMs, CANARY_INTERVAL_MS));
  log.info(0, 'initial state loaded; syncing', { services: stores.serviceCount, families: pipelines.map((p) => p.family).join(',') });
  return {
    ready,
    healthz,
    metricsServer,
    metrics,
    async stop() {
      clearInterval(canaryTimer);
      await source.stop();
      await runner.stop();
      await stopServers();
    },
  };
}
