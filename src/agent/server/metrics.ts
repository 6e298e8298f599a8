/**
 * kube-proxy's Prometheus metrics, with upstream's names, types, labels,
 * buckets and help texts (pkg/proxy/metrics/metrics.go; labels as in the
 * v1.34 metrics reference, which added `ip_family` to the per-proxier ones),
 * so existing dashboards and alerts keep working. Upstream's help texts carry
 * the `[ALPHA] ` prefix component-base adds for alpha metrics; so do ours.
 *
 * As upstream, the mode decides what is registered: the full/partial sync
 * histograms and the iptables_* metrics only in iptables mode, the
 * nftables_* failure counters only in nftables mode.
 *
 * The registry is this object's own (never prom-client's global one), and
 * also carries Node's default process metrics and this project's
 * `kubeproxy_ts_invalid_objects_total`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets, linearBuckets } from 'prom-client';
import type { Metric } from 'prom-client';
import type { IPFamily } from '../model/types.js';

export type MetricsProxyMode = 'iptables' | 'nftables';
/** Upstream's label values for kubeproxy_sync_proxy_rules_no_local_endpoints_total. */
export type NoLocalEndpointsPolicy = 'internal' | 'external';

/** ExponentialBuckets(0.001, 2, 15): 1 ms … 16.384 s. */
export const SYNC_DURATION_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 15);

/**
 * component-base's MergeBuckets starts from a 0 bucket, then 0.25, 0.5,
 * 1…59 s, 60…115 s by 5, 120…300 s by 30.
 */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

const alpha = (help: string): string => `[ALPHA] ${help}`;

export interface ProxyMetricsOptions {
  /** Which mode-specific metrics to register (as upstream's RegisterMetrics(mode)). Default iptables. */
  mode?: MetricsProxyMode;
  /** The family used when a method is not given one. Default IPv4. */
  family?: IPFamily;
  /** Add prom-client's default process/Node.js metrics. Default true. */
  defaultMetrics?: boolean;
}

export interface SyncRecord {
  full: boolean;
  /** How long the sync took, seconds (upstream observes it whether or not the sync succeeded). */
  seconds: number;
  /** Whether the sync succeeded; only then is the last-sync timestamp set. Default true. */
  ok?: boolean;
  /** When the sync finished, ms since epoch. Default Date.now(). */
  at?: number;
  family?: IPFamily;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly mode: MetricsProxyMode;
  readonly family: IPFamily;

  private readonly syncDuration: Histogram<'ip_family'>;
  private readonly syncFullDuration: Histogram<'ip_family'>;
  private readonly syncPartialDuration: Histogram<'ip_family'>;
  private readonly networkProgramming: Histogram<'ip_family'>;
  private readonly lastSyncTimestamp: Gauge<'ip_family'>;
  private readonly lastQueuedTimestamp: Gauge<'ip_family'>;
  private readonly endpointChangesPending: Gauge;
  private readonly endpointChangesTotal: Counter;
  private readonly serviceChangesPending: Gauge;
  private readonly serviceChangesTotal: Counter;
  private readonly iptablesRestoreFailures: Counter<'ip_family'>;
  private readonly iptablesPartialRestoreFailures: Counter<'ip_family'>;
  private readonly iptablesRulesTotal: Gauge<'ip_family' | 'table'>;
  private readonly iptablesRulesLast: Gauge<'ip_family' | 'table'>;
  private readonly nftablesSyncFailures: Counter<'ip_family'>;
  private readonly nftablesCleanupFailures: Counter<'ip_family'>;
  private readonly noLocalEndpoints: Gauge<'ip_family' | 'traffic_policy'>;
  private readonly healthzTotal: Counter<'code'>;
  private readonly livezTotal: Counter<'code'>;
  private readonly invalidObjects: Counter<'kind' | 'source'>;

  constructor(opts: ProxyMetricsOptions = {}) {
    this.mode = opts.mode ?? 'iptables';
    this.family = opts.family ?? 'IPv4';
    const none = { registers: [] as Registry[] };
    const fam = ['ip_family'] as const;

    this.syncDuration = new Histogram({ ...none, name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: alpha('SyncProxyRules latency in seconds'), labelNames: fam, buckets: [...SYNC_DURATION_BUCKETS] });
    this.syncFullDuration = new Histogram({ ...none, name: 'kubeproxy_sync_full_proxy_rules_duration_seconds', help: alpha('SyncProxyRules latency in seconds for full resyncs'), labelNames: fam, buckets: [...SYNC_DURATION_BUCKETS] });
    this.syncPartialDuration = new Histogram({ ...none, name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds', help: alpha('SyncProxyRules latency in seconds for partial resyncs'), labelNames: fam, buckets: [...SYNC_DURATION_BUCKETS] });
    this.networkProgramming = new Histogram({ ...none, name: 'kubeproxy_network_programming_duration_seconds', help: alpha('In Cluster Network Programming Latency in seconds'), labelNames: fam, buckets: [...NETWORK_PROGRAMMING_BUCKETS] });
    this.lastSyncTimestamp = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: alpha('The last time proxy rules were successfully synced'), labelNames: fam });
    this.lastQueuedTimestamp = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: alpha('The last time a sync of proxy rules was queued'), labelNames: fam });
    this.endpointChangesPending = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', help: alpha('Pending proxy rules Endpoint changes') });
    this.endpointChangesTotal = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: alpha('Cumulative proxy rules Endpoint changes') });
    this.serviceChangesPending = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_service_changes_pending', help: alpha('Pending proxy rules Service changes') });
    this.serviceChangesTotal = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: alpha('Cumulative proxy rules Service changes') });
    this.iptablesRestoreFailures = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', help: alpha('Cumulative proxy iptables restore failures'), labelNames: fam });
    this.iptablesPartialRestoreFailures = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total', help: alpha('Cumulative proxy iptables partial restore failures'), labelNames: fam });
    this.iptablesRulesTotal = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_iptables_total', help: alpha('Total number of iptables rules owned by kube-proxy'), labelNames: ['ip_family', 'table'] as const });
    this.iptablesRulesLast = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_iptables_last', help: alpha('Number of iptables rules written by kube-proxy in last sync'), labelNames: ['ip_family', 'table'] as const });
    this.nftablesSyncFailures = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', help: alpha('Cumulative proxy nftables sync failures'), labelNames: fam });
    this.nftablesCleanupFailures = new Counter({ ...none, name: 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total', help: alpha('Cumulative proxy nftables cleanup failures'), labelNames: fam });
    this.noLocalEndpoints = new Gauge({ ...none, name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', help: alpha('Number of services with a Local traffic policy and no endpoints'), labelNames: ['ip_family', 'traffic_policy'] as const });
    this.healthzTotal = new Counter({ ...none, name: 'kubeproxy_proxy_healthz_total', help: alpha('Cumulative proxy healthz HTTP status'), labelNames: ['code'] as const });
    this.livezTotal = new Counter({ ...none, name: 'kubeproxy_proxy_livez_total', help: alpha('Cumulative proxy livez HTTP status'), labelNames: ['code'] as const });
    this.invalidObjects = new Counter({ ...none, name: 'kubeproxy_ts_invalid_objects_total', help: 'Objects rejected as invalid, by kind and source (kube-proxy-ts only)', labelNames: ['kind', 'source'] as const });

    // Registered for every mode, as upstream.
    const common: Metric<string>[] = [
      this.syncDuration,
      this.lastQueuedTimestamp,
      this.lastSyncTimestamp,
      this.endpointChangesPending,
      this.endpointChangesTotal,
      this.serviceChangesPending,
      this.serviceChangesTotal,
      this.healthzTotal,
      this.livezTotal,
      this.networkProgramming,
      this.noLocalEndpoints,
      this.invalidObjects,
    ];
    for (const m of common) this.registry.registerMetric(m);
    if (this.mode === 'iptables') {
      const iptablesOnly: Metric<string>[] = [this.syncFullDuration, this.syncPartialDuration, this.iptablesRestoreFailures, this.iptablesPartialRestoreFailures, this.iptablesRulesTotal, this.iptablesRulesLast];
      for (const m of iptablesOnly) this.registry.registerMetric(m);
      // Failure counters start at 0 so rate()/increase() alerts have a series to work on.
      this.iptablesRestoreFailures.labels(this.family).inc(0);
      this.iptablesPartialRestoreFailures.labels(this.family).inc(0);
    } else {
      this.registry.registerMetric(this.nftablesSyncFailures);
      this.registry.registerMetric(this.nftablesCleanupFailures);
      this.nftablesSyncFailures.labels(this.family).inc(0);
      this.nftablesCleanupFailures.labels(this.family).inc(0);
    }
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text exposition of every metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * One sync: observes the duration (all syncs, and full or partial) and,
   * when it succeeded, sets the last-sync timestamp.
   */
  recordSync(s: SyncRecord): void {
    const family = s.family ?? this.family;
    this.syncDuration.labels(family).observe(s.seconds);
    (s.full ? this.syncFullDuration : this.syncPartialDuration).labels(family).observe(s.seconds);
    if (s.ok ?? true) this.lastSyncTimestamp.labels(family).set((s.at ?? Date.now()) / 1000);
  }

  /** A sync was asked for (a change arrived). Sets the last-queued timestamp. */
  recordQueuedSync(at: number = Date.now(), family: IPFamily = this.family): void {
    this.lastQueuedTimestamp.labels(family).set(at / 1000);
  }

  /** Service changes seen (Service add/update/delete events that matter). */
  recordServiceChanges(count = 1): void {
    this.serviceChangesTotal.inc(count);
  }

  /** Endpoint changes seen (EndpointSlice add/update/delete events that matter). */
  recordEndpointChanges(count = 1): void {
    this.endpointChangesTotal.inc(count);
  }

  /** Changes received but not yet synced. */
  setPendingChanges(pending: { services?: number; endpoints?: number }): void {
    if (pending.services !== undefined) this.serviceChangesPending.set(pending.services);
    if (pending.endpoints !== undefined) this.endpointChangesPending.set(pending.endpoints);
  }

  /**
   * iptables rules per table (`filter`, `nat`, …): `total` owned after the
   * sync, `lastSync` written by it. No effect in nftables mode (not exposed upstream).
   */
  setIptablesRules(table: string, counts: { total?: number; lastSync?: number }, family: IPFamily = this.family): void {
    if (counts.total !== undefined) this.iptablesRulesTotal.labels(family, table).set(counts.total);
    if (counts.lastSync !== undefined) this.iptablesRulesLast.labels(family, table).set(counts.lastSync);
  }

  /**
   * The kernel tool refused a sync's input. iptables mode: counts a restore
   * failure and, for a partial sync, also a partial restore failure (after
   * which upstream falls back to a full sync). nftables mode: counts a sync failure.
   */
  recordRestoreFailure(opts: { partial: boolean; family?: IPFamily }): void {
    const family = opts.family ?? this.family;
    if (this.mode === 'nftables') {
      this.nftablesSyncFailures.labels(family).inc();
      return;
    }
    this.iptablesRestoreFailures.labels(family).inc();
    if (opts.partial) this.iptablesPartialRestoreFailures.labels(family).inc();
  }

  /** nftables mode: removing stale chains failed. */
  recordNftablesCleanupFailure(family: IPFamily = this.family): void {
    this.nftablesCleanupFailures.labels(family).inc();
  }

  /** Services whose internal/external traffic policy is Local and which have no local endpoints. */
  setNoLocalEndpoints(policy: NoLocalEndpointsPolicy, count: number, family: IPFamily = this.family): void {
    this.noLocalEndpoints.labels(family, policy).set(count);
  }

  /**
   * After a successful sync, for each change it carried that has a trigger
   * time (the EndpointSlice's endpoints.kubernetes.io/last-change-trigger-time):
   * the time from that trigger to now.
   */
  recordNetworkProgramming(triggerTime: number | Date, now: number = Date.now(), family: IPFamily = this.family): void {
    const t = triggerTime instanceof Date ? triggerTime.getTime() : triggerTime;
    if (!Number.isFinite(t)) return;
    this.networkProgramming.labels(family).observe(Math.max(0, (now - t) / 1000));
  }

  /** A /healthz answer on the healthz port. */
  recordHealthzResponse(code: number): void {
    this.healthzTotal.labels(String(code)).inc();
  }

  /** A /livez answer on the healthz port. */
  recordLivezResponse(code: number): void {
    this.livezTotal.labels(String(code)).inc();
  }

  /** Objects a source rejected as invalid (kind: Service, EndpointSlice, Node, …; source: manifests, api, …). */
  recordInvalidObject(kind: string, source: string, count = 1): void {
    this.invalidObjects.labels(kind, source).inc(count);
  }
}
