/**
 * The pure parts of `kube-proxy-ts bench --latency`: reading the agent's log
 * lines and its /metrics text, /proc/<pid>/status, and summarising latencies
 * (nearest-rank percentiles, as the rest of the bench).
 *
 * The agent logs (src/agent/agent.ts, --v=4), after a sync that put a
 * change in the kernel, one line per EndpointSlice change carrying the
 * `endpoints.kubernetes.io/last-change-trigger-time` annotation:
 *
 *   2025-01-01T00:00:00.000Z I "network programming latency" family=IPv4 ms=812
 *
 * and (--v=2) one line per family per successful sync:
 *
 *   2025-01-01T00:00:00.000Z I "synced rules" family=IPv4 full=false servicePorts=1300 changed=3 rules=57 bytes=4711 ms=80 toolMs=61
 */
import { quantile } from './stats.js';

export type LogFamily = 'IPv4' | 'IPv6';

export interface LatencyLine {
  family: LogFamily;
  ms: number;
}

export interface SyncLine {
  family: LogFamily;
  full: boolean;
  ms: number;
  toolMs: number;
  /** Service ports whose rules changed (partial syncs). */
  changed: number;
}

/** `key=value` fields of one log line (values unquoted when they were JSON-quoted). */
export function logFields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][\w]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw.slice(1, -1);
      }
    }
    out[m[1]!] = value;
  }
  return out;
}

function family(v: string | undefined): LogFamily | undefined {
  return v === 'IPv4' || v === 'IPv6' ? v : undefined;
}

/** A "network programming latency" line, or undefined for any other line. */
export function parseLatencyLine(line: string): LatencyLine | undefined {
  if (!line.includes('"network programming latency"')) return undefined;
  const f = logFields(line);
  const fam = family(f.family);
  const ms = Number(f.ms);
  if (!fam || f.ms === undefined || f.ms === '' || !Number.isFinite(ms)) return undefined;
  return { family: fam, ms };
}

/** A "synced rules" line (one successful sync of one family), or undefined. */
export function parseSyncLine(line: string): SyncLine | undefined {
  if (!line.includes('"synced rules"')) return undefined;
  const f = logFields(line);
  const fam = family(f.family);
  if (!fam) return undefined;
  const num = (v: string | undefined): number => (v === undefined || v === '' ? NaN : Number(v));
  return { family: fam, full: f.full === 'true', ms: num(f.ms), toolMs: num(f.toolMs), changed: num(f.changed) };
}

/** The families the agent syncs, from its "initial state loaded; syncing" line (`families=IPv4,IPv6`). */
export function parseFamiliesLine(line: string): LogFamily[] | undefined {
  if (!line.includes('"initial state loaded; syncing"')) return undefined;
  const f = logFields(line);
  if (!f.families) return undefined;
  return f.families.split(',').map(family).filter((x): x is LogFamily => x !== undefined);
}

/**
 * The value of one sample of a Prometheus text exposition: `name` with exactly
 * the given labels (order-insensitive; no labels: the unlabelled sample).
 * Undefined when the sample is absent.
 */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .sort()
    .join(',');
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '')
      .split(/,(?=[A-Za-z_]\w*=")/)
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .sort()
      .join(',');
    if (have !== want) continue;
    const v = m[3]!;
    return v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
  }
  return undefined;
}

/** A `kB` field of /proc/<pid>/status (VmHWM, VmRSS, …) in KiB; undefined when absent. */
export function procStatusKiB(status: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m ? Number(m[1]) : undefined;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

/** Nearest-rank p50/p90/p99 (see stats.quantile), min, max and mean; NaN for no samples. */
export function latencySummary(xs: readonly number[]): LatencySummary {
  if (xs.length === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, min: NaN, mean: NaN };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  return { count: xs.length, p50: quantile(xs, 0.5), p90: quantile(xs, 0.9), p99: quantile(xs, 0.99), max, min, mean: sum / xs.length };
}
