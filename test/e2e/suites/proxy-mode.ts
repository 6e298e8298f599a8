/**
 * What the e2e suites need to know about a proxy mode: its agent flag, a
 * namespace prefix unique per suite and mode, and a way to read and wait
 * on the rules the agent wrote (iptables-save / ip6tables-save in iptables
 * mode, `nft list table ip|ip6 kube-proxy` in nftables mode). Suites wait
 * on traffic or on the agent's "synced rules" lines where they can; these
 * are for the assertions that are about the rules themselves.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Topology } from '../../../scripts/netns/topology.js';
import { normalizeTable } from '../../../src/backends/nftables/nft/normalize.js';
import type { NftJSON } from '../../../src/backends/nftables/nft/run.js';

export type ProxyMode = 'iptables' | 'nftables';
export type Family = 'IPv4' | 'IPv6';

/** Skips the whole file (plan 0) unless root: namespaces, iptables, nftables and conntrack need it. */
export function needsRoot(t: { plan(n: number, comment?: string): void }, what = 'create network namespaces and program the kernel'): boolean {
  if (process.getuid?.() === 0) return true;
  t.plan(0, `skipped: needs root to ${what}`);
  return false;
}

/** A namespace prefix unique per suite, mode and process (test files run in parallel). */
export const nsPrefix = (suite: string, mode: ProxyMode): string => `kpt-${suite}-${mode === 'iptables' ? 'ipt' : 'nft'}-${process.pid}`;

/** The agent's flags selecting the mode. */
export const modeArgs = (mode: ProxyMode): string[] => [`--proxy-mode=${mode}`];

/**
 * The node's rules of one family, as text: iptables-save (without its
 * timestamped comment lines) or the kube-proxy table ('' when there is
 * none).
 */
export async function rulesText(topo: Topology, mode: ProxyMode, family: Family = 'IPv4'): Promise<string> {
  if (mode === 'iptables') {
    const r = await topo.exec(topo.nodeNs, [family === 'IPv4' ? 'iptables-save' : 'ip6tables-save'], { check: true });
    return r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
  }
  const r = await topo.exec(topo.nodeNs, ['nft', 'list', 'table', family === 'IPv4' ? 'ip' : 'ip6', 'kube-proxy']);
  if (r.exitCode !== 0) {
    if (/No such file or directory/.test(r.stderr)) return '';
    throw new Error(`nft list table failed: ${r.stderr}`);
  }
  return r.stdout;
}

/** Everything nftables holds in the node namespace (every table, ours and others). */
export async function nftRuleset(topo: Topology): Promise<string> {
  return (await topo.exec(topo.nodeNs, ['nft', 'list', 'ruleset'], { check: true })).stdout;
}

/**
 * The mode's whole state in the node, both families, in a canonical form
 * for before/after comparisons: iptables-save and ip6tables-save, or both
 * kube-proxy tables normalized (no handles, no expiry times, objects by
 * name: a full sync re-creates the base chains, which moves them in
 * `nft list` order).
 */
export async function kernelState(topo: Topology, mode: ProxyMode): Promise<string> {
  if (mode === 'iptables') return `${await rulesText(topo, mode, 'IPv4')}\n${await rulesText(topo, mode, 'IPv6')}`;
  const out: string[] = [];
  for (const family of ['ip', 'ip6']) {
    const r = await topo.exec(topo.nodeNs, ['nft', '-j', 'list', 'table', family, 'kube-proxy']);
    out.push(`${family}: ${r.exitCode === 0 ? JSON.stringify(normalizeTable(JSON.parse(r.stdout) as NftJSON), null, 1) : '(no table)'}`);
  }
  return out.join('\n');
}

/** A service port as both modes name it: `ns/name:port` (iptables comments) and `ns/name/proto/port` (nftables chains). */
export interface SvcPortRef {
  namespace: string;
  name: string;
  port: string;
  protocol?: 'TCP' | 'UDP';
}

/** Parses `ns/name:port` (TCP unless `/UDP` follows). */
export function svcPort(ref: string): SvcPortRef {
  const m = /^([^/]+)\/([^:]+):([^/]+)(?:\/(TCP|UDP))?$/.exec(ref);
  if (!m) throw new Error(`not a service port reference: ${ref}`);
  return { namespace: m[1]!, name: m[2]!, port: m[3]!, protocol: (m[4] as 'TCP' | 'UDP' | undefined) ?? 'TCP' };
}

const escapeRe = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const nftBase = (s: SvcPortRef): string => `-${s.namespace}/${s.name}/${(s.protocol ?? 'TCP').toLowerCase()}/${s.port}`;

/**
 * Whether the rules mention the service port: iptables mode's rule
 * comments; nftables mode's chain names, or the comment of its
 * no-endpoint map element.
 */
export function mentions(rules: string, mode: ProxyMode, s: SvcPortRef): boolean {
  if (mode === 'iptables') return new RegExp(`[" ]${escapeRe(`${s.namespace}/${s.name}:${s.port}`)}[" ]`).test(rules);
  return rules.includes(`${nftBase(s)} `) || rules.includes(`${nftBase(s)}__`) || rules.includes(`comment "${s.namespace}/${s.name}:${s.port}"`);
}

/**
 * The DNAT targets (`ip:port`, `[ip6]:port`) the rules hold for one service
 * port, sorted: iptables mode's KUBE-SEP rules carrying its comment;
 * nftables mode's elements of `service-endpoints-<proto>` under the ClusterIP
 * its `service-ips` element (commented with its name) dispatches, or, for a
 * port in upstream's layout (session affinity), its endpoint chains (a
 * flushed stale chain has none).
 */
export function dnatTargets(rules: string, mode: ProxyMode, s: SvcPortRef): string[] {
  const out: string[] = [];
  if (mode === 'iptables') {
    for (const l of rules.split('\n')) {
      if (!l.includes(`"${s.namespace}/${s.name}:${s.port}"`) || !l.includes('-j DNAT')) continue;
      out.push(/--to-destination (\S+)/.exec(l)?.[1] ?? '?');
    }
    return out.sort();
  }
  const proto = (s.protocol ?? 'TCP').toLowerCase();
  const flat = rules.replace(/\s+/g, ' ');
  const dispatch = new RegExp(`([0-9a-f.:]+) \\. ${proto} \\. (\\d+) comment "${escapeRe(`${s.namespace}/${s.name}:${s.port}`)}" : goto lb-`).exec(flat);
  const body = new RegExp(`map service-endpoints-${proto} \\{[^}]*\\}`).exec(flat)?.[0] ?? '';
  if (dispatch) {
    const el = new RegExp(`(?:^|[{,] )${escapeRe(dispatch[1]!)} \\. ${dispatch[2]} \\. \\d+ : ([0-9a-f.:]+) \\. (\\d+)`, 'g');
    for (const m of body.matchAll(el)) out.push(m[1]!.includes(':') ? `[${m[1]}]:${m[2]}` : `${m[1]}:${m[2]}`);
    return out.sort();
  }
  let chain = '';
  for (const l of rules.split('\n')) {
    const c = /^\s*chain (\S+) \{/.exec(l);
    if (c) chain = c[1]!;
    if (!chain.startsWith('endpoint-') || !chain.includes(`${nftBase(s)}__`)) continue;
    const d = /dnat (?:ip6? )?to (\S+)/.exec(l);
    if (d) out.push(d[1]!);
  }
  return out.sort();
}

export interface WaitOptions {
  family?: Family;
  timeoutMs?: number;
  /** Log lines to show when the wait fails (the agent's). */
  log?: () => string[];
}

/** Waits until the node's rules (rulesText) satisfy pred; fails with the rules and the log's tail. */
export async function waitForRules(topo: Topology, mode: ProxyMode, pred: (rules: string) => boolean, what: string, o: WaitOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rules = await rulesText(topo, mode, o.family);
    if (pred(rules)) return;
    if (Date.now() > deadline) {
      const log = o.log ? `\n--- agent log (tail) ---\n${o.log().slice(-30).join('\n')}` : '';
      throw new Error(`rules never reached the kernel within ${timeoutMs} ms: ${what}\n--- ${mode} rules (${o.family ?? 'IPv4'}) ---\n${rules}${log}`);
    }
    await sleep(50);
  }
}
