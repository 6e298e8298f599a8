/**
 * The pure parts of `kube-proxy-ts bench --latency`: reading the agent's log
 * lines and its /metrics text, /proc/<pid>/status, what `iptables-save` or
 * `nft -j list table` show of the agent's rules, and summarising latencies
 * (nearest-rank percentiles, as the rest of the bench).
 *
 * The agent logs (src/agent/agent.ts, --v=4), after a sync that put a
 * change in the kernel, one line per EndpointSlice change carrying the
 * `endpoints.kubernetes.io/last-change-trigger-time` annotation:
 *
 *   2025-01-01T00:00:00.000Z I "network programming latency" family=IPv4 ms=812
 *
 * and (--v=2) one line per family per successful sync (both lines come from
 * the mode-independent sync loop, so iptables and nftables mode log alike):
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

/**
 * What the kernel held at the end of a run, read inside the namespace with
 * the mode's own tool (not the agent's account of what it wrote).
 */
export interface KernelTableCount {
  /** iptables: `nat`, `filter`, …; nftables: `ip kube-proxy`. */
  table: string;
  /** iptables: the KUBE-* chains; nftables: every chain of the table. */
  chains: number;
  /** iptables: rules in a KUBE-* chain or jumping to one; nftables: every rule of the table. */
  rules: number;
  /** nftables: sets and maps; null in iptables mode (it has none). */
  sets: number | null;
  /** nftables: elements of those sets and maps; null in iptables mode. */
  elements: number | null;
}

/**
 * `iptables-save` output, per table holding any of the agent's chains or
 * rules (in the bench's fresh namespace, every KUBE-* chain is the agent's).
 * `servicesChain`: the table declares KUBE-SERVICES.
 */
export function iptablesSaveCounts(text: string): (KernelTableCount & { servicesChain: boolean })[] {
  const out: (KernelTableCount & { servicesChain: boolean })[] = [];
  let cur: (KernelTableCount & { servicesChain: boolean }) | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      cur = { table: line.slice(1).trim(), chains: 0, rules: 0, sets: null, elements: null, servicesChain: false };
      out.push(cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith(':KUBE-')) {
      cur.chains++;
      if (line.startsWith(':KUBE-SERVICES ')) cur.servicesChain = true;
    } else if (line.startsWith('-A ') && (line.startsWith('-A KUBE-') || / -[jg] KUBE-/.test(line))) {
      cur.rules++;
    }
  }
  return out.filter((t) => t.chains > 0 || t.rules > 0);
}

/**
 * `nft -j list table <family> <name>` output: the table's chains, rules,
 * sets and maps, and the elements in those (one per entry of `elem`,
 * whatever its key: an address, a concatenation, a range). Undefined when
 * the table is not in the listing.
 */
export function nftTableCounts(listing: unknown, family: string, name: string): KernelTableCount | undefined {
  const objects = (listing as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(objects)) return undefined;
  const ours = (o: unknown): o is Record<string, unknown> => {
    const x = o as Record<string, unknown> | null;
    return typeof x === 'object' && x !== null && x.family === family && (x.table ?? x.name) === name;
  };
  let found = false;
  const count: KernelTableCount = { table: `${family} ${name}`, chains: 0, rules: 0, sets: 0, elements: 0 };
  for (const raw of objects as Record<string, unknown>[]) {
    if (ours(raw.table)) found = true;
    else if (ours(raw.chain)) count.chains++;
    else if (ours(raw.rule)) count.rules++;
    else {
      const set = ours(raw.set) ? raw.set : ours(raw.map) ? raw.map : undefined;
      if (!set) continue;
      count.sets!++;
      if (Array.isArray(set.elem)) count.elements! += set.elem.length;
    }
  }
  return found ? count : undefined;
}
