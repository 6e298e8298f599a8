/**
 * The proxy's health state, with upstream's semantics
 * (pkg/proxy/healthcheck/proxy_health.go, ProxyHealthServer):
 *
 * - Each IP family's proxier reports `updated(family)` after every successful
 *   sync, and `queuedUpdate(family)` whenever it receives a change that needs
 *   a sync. Only the oldest queued-and-not-yet-synced change counts.
 * - A family is unhealthy when it has a queued change older than the health
 *   timeout (upstream: 2 × syncPeriod). The proxy is healthy when every
 *   family is.
 * - Only families that have reported `updated()` at least once are judged:
 *   before that the proxy is healthy ("healthy while starting up"). Upstream's
 *   sync loop calls `Updated(family)` when it starts, so that a first sync
 *   that never succeeds still turns the proxy unhealthy; callers should do
 *   the same (call `updated(family)` when the sync loop starts).
 * - The node is eligible unless it is being deleted (deletionTimestamp set)
 *   or tainted `ToBeDeletedByClusterAutoscaler`. /healthz reports unhealthy
 *   for an ineligible node; /livez ignores eligibility.
 *
 * Pure: no timers, no I/O, the clock is injectable. Times are ms since epoch.
 */
import type { IPFamily } from '../model/types.js';

/** The taint the Cluster Autoscaler puts on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** The facts of the own Node that decide its eligibility. */
export interface NodeHealthInfo {
  /** Set (any non-empty value) when the Node is being deleted. */
  deletionTimestamp?: string | number | Date | null;
  taints?: ReadonlyArray<{ key: string }> | null;
}

/** Extracts NodeHealthInfo from a Kubernetes Node object (`metadata.deletionTimestamp`, `spec.taints[].key`). */
export function nodeHealthInfoFromObject(node: unknown): NodeHealthInfo {
  const obj = (node ?? {}) as { metadata?: { deletionTimestamp?: unknown }; spec?: { taints?: unknown } };
  const ts = obj.metadata?.deletionTimestamp;
  const taints = Array.isArray(obj.spec?.taints) ? (obj.spec.taints as unknown[]) : [];
  return {
    deletionTimestamp: typeof ts === 'string' || typeof ts === 'number' || ts instanceof Date ? ts : null,
    taints: taints.flatMap((t) => (t && typeof (t as { key?: unknown }).key === 'string' ? [{ key: (t as { key: string }).key }] : [])),
  };
}

/** Whether a node with these facts may receive traffic (not being deleted, not tainted for deletion). */
export function isNodeEligible(node: NodeHealthInfo | null | undefined): boolean {
  if (!node) return false;
  const ts = node.deletionTimestamp;
  if (ts !== undefined && ts !== null && ts !== '' && ts !== 0) return false;
  return !(node.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
}

export interface FamilyHealth {
  /** Last successful sync of this family (ms since epoch). */
  lastUpdated: number;
  healthy: boolean;
}

export interface HealthStatus {
  /** Proxy health only (all families), as /livez reports it. */
  healthy: boolean;
  /** Node eligibility, which /healthz adds to `healthy`. */
  nodeEligible: boolean;
  /** The most recent `updated()` over all families; undefined before any. */
  lastUpdated: number | undefined;
  currentTime: number;
  /** Per family that has reported `updated()`, sorted IPv4 first. */
  families: Partial<Record<IPFamily, FamilyHealth>>;
}

export interface ProxyHealthOptions {
  /** How long a queued change may wait for a sync before the proxy is unhealthy. Upstream: 2 × syncPeriod. */
  healthTimeoutMs: number;
  /** The clock, ms since epoch. Default Date.now. */
  now?: () => number;
}

export class ProxyHealth {
  readonly healthTimeoutMs: number;
  private readonly now: () => number;
  private readonly lastUpdated = new Map<IPFamily, number>();
  private readonly oldestQueued = new Map<IPFamily, number>();
  // Eligible while starting up, until a node update says otherwise (upstream).
  private eligible = true;

  constructor(opts: ProxyHealthOptions) {
    if (!(opts.healthTimeoutMs > 0)) throw new RangeError(`health timeout must be > 0 ms, got ${opts.healthTimeoutMs}`);
    this.healthTimeoutMs = opts.healthTimeoutMs;
    this.now = opts.now ?? Date.now;
  }

  /** Upstream's default: the health timeout is twice the sync period. */
  static forSyncPeriod(syncPeriodMs: number, now?: () => number): ProxyHealth {
    return new ProxyHealth({ healthTimeoutMs: 2 * syncPeriodMs, ...(now ? { now } : {}) });
  }

  /** A change needing a sync arrived for `family`; keeps the oldest pending time. */
  queuedUpdate(family: IPFamily = 'IPv4'): void {
    if (!this.oldestQueued.has(family)) this.oldestQueued.set(family, this.now());
  }

  /** `family` synced successfully (or its sync loop just started): nothing is pending any more. */
  updated(family: IPFamily = 'IPv4'): void {
    this.oldestQueued.delete(family);
    this.lastUpdated.set(family, this.now());
  }

  /**
   * The own Node changed. `null`/`undefined` means the Node object is gone,
   * which makes the node ineligible (as upstream, where a missing node is).
   */
  syncNode(node: NodeHealthInfo | null | undefined): void {
    this.eligible = isNodeEligible(node);
  }

  get nodeEligible(): boolean {
    return this.eligible;
  }

  /** Proxy health only (what /livez reports). */
  isHealthy(now: number = this.now()): boolean {
    return this.health(now).healthy;
  }

  health(now: number = this.now()): HealthStatus {
    const families: Partial<Record<IPFamily, FamilyHealth>> = {};
    let healthy = true;
    let lastUpdated: number | undefined;
    for (const family of [...this.lastUpdated.keys()].sort()) {
      const updatedAt = this.lastUpdated.get(family)!;
      if (lastUpdated === undefined || updatedAt > lastUpdated) lastUpdated = updatedAt;
      const queuedAt = this.oldestQueued.get(family);
      const late = queuedAt !== undefined && now - queuedAt >= this.healthTimeoutMs;
      if (late) healthy = false;
      families[family] = { lastUpdated: updatedAt, healthy: !late };
    }
    return { healthy, nodeEligible: this.eligible, lastUpdated, currentTime: now, families };
  }
}

/** Go's time.Time JSON form (RFC 3339 with trailing zeros of the fraction dropped), in UTC. */
export function goTimeJSON(ms: number | undefined): string {
  if (ms === undefined) return '0001-01-01T00:00:00Z';
  const iso = new Date(ms).toISOString();
  return iso.replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : 'Z'));
}

export interface HealthResponse {
  status: 200 | 503;
  /** The JSON body, in upstream's field order. */
  body: string;
}

/**
 * What /healthz or /livez answer, as upstream: /healthz is 503 when the proxy
 * is unhealthy or the node is not eligible and includes `nodeEligible`;
 * /livez judges proxy health only and omits it. When healthy, `lastUpdated`
 * is the current time (upstream keeps that for compatibility).
 */
export function healthResponse(health: ProxyHealth, endpoint: 'healthz' | 'livez', now?: number): HealthResponse {
  const h = health.health(now);
  const ok = endpoint === 'healthz' ? h.healthy && h.nodeEligible : h.healthy;
  const body: Record<string, unknown> = {
    lastUpdated: goTimeJSON(ok ? h.currentTime : h.lastUpdated),
    currentTime: goTimeJSON(h.currentTime),
  };
  if (endpoint === 'healthz') body.nodeEligible = h.nodeEligible;
  body.healthy = h.healthy;
  const status: Record<string, { lastUpdated: string; healthy: boolean }> = {};
  for (const [family, f] of Object.entries(h.families)) status[family] = { lastUpdated: goTimeJSON(f.lastUpdated), healthy: f.healthy };
  if (Object.keys(status).length > 0) body.status = status;
  return { status: ok ? 200 : 503, body: JSON.stringify(body) };
}
