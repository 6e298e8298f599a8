/**
 * The pure iptables renderer: snapshot in, iptables-restore text out. No I/O.
 * The layout follows upstream kube-proxy's iptables mode so that
 * `iptables-save` reads like upstream's.
 */
import { categorizeEndpoints, endpointString } from '../../agent/model/endpoint-selection.js';
import type { ServicePort, Snapshot } from '../../agent/model/types.js';
import { FIXED_CHAINS, extChain, jumpKey, sepChain, svcChain } from './names.js';
import type { JumpRule } from './names.js';

export interface RenderConfig {
  /** Pod CIDR of the cluster: traffic to a ClusterIP from outside it is masqueraded. */
  clusterCIDR?: string;
  /** Masquerade all traffic to ClusterIPs. */
  masqueradeAll: boolean;
  /** The masquerade mark bit (0-31), 14 by default as upstream (0x4000). */
  masqueradeBit: number;
  /** MASQUERADE --random-fully, where iptables supports it. */
  randomFully: boolean;
}

export const DEFAULT_RENDER_CONFIG: RenderConfig = { masqueradeAll: false, masqueradeBit: 14, randomFully: true };

/** The rules one service port contributes, by place. */
export interface RenderedServicePort {
  /** Per-service chains in the nat table, in order, with their rules. */
  natChains: Map<string, string[]>;
  /** Rules for nat KUBE-SERVICES (dispatch on service IPs). */
  natServices: string[];
  /** Rules for nat KUBE-NODEPORTS. */
  natNodePorts: string[];
  /** Rules for filter KUBE-SERVICES (REJECT when no endpoints). */
  filterServices: string[];
  /** Rules for filter KUBE-EXTERNAL-SERVICES (REJECT on external destinations when no endpoints). */
  filterExternal: string[];
}

/** Quotes a comment for iptables-restore when it has spaces; comments come only from validated names. */
export function comment(text: string): string {
  const safe = text.replace(/["\\]/g, '');
  return /\s/.test(safe) ? `-m comment --comment "${safe}"` : `-m comment --comment ${safe}`;
}

function protoMatch(sp: ServicePort): string {
  const p = sp.protocol.toLowerCase();
  return `-m ${p} -p ${p}`;
}

export function markHex(bit: number): string {
  return `0x${(1 << bit >>> 0).toString(16)}`;
}

/** Upstream's probability text: 1/n with ten decimals. */
export function probability(n: number): string {
  return (1 / n).toFixed(10);
}

export function renderServicePort(sp: ServicePort, cfg: RenderConfig): RenderedServicePort {
  const out: RenderedServicePort = { natChains: new Map(), natServices: [], natNodePorts: [], filterServices: [], filterExternal: [] };
  const name = sp.displayName;
  const proto = protoMatch(sp);
  const svc = svcChain(sp);
  const ext = extChain(sp);
  const { clusterEndpoints } = categorizeEndpoints(sp);
  const hasEndpoints = clusterEndpoints.length > 0;
  const hasExternal = sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;

  if (!hasEndpoints) {
    const reject = `${comment(`${name} has no endpoints`)}`;
    out.filterServices.push(`-A KUBE-SERVICES ${reject} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j REJECT`);
    for (const ip of sp.externalIPs) out.filterExternal.push(`-A KUBE-EXTERNAL-SERVICES ${reject} ${proto} -d ${ip} --dport ${sp.port} -j REJECT`);
    for (const ip of sp.loadBalancerIPs) out.filterExternal.push(`-A KUBE-EXTERNAL-SERVICES ${reject} ${proto} -d ${ip} --dport ${sp.port} -j REJECT`);
    if (sp.nodePort !== 0) {
      out.filterExternal.push(`-A KUBE-EXTERNAL-SERVICES ${reject} -m addrtype --dst-type LOCAL ${proto} --dport ${sp.nodePort} -j REJECT`);
    }
    return out;
  }

  // Dispatch from KUBE-SERVICES / KUBE-NODEPORTS.
  const clusterComment = comment(`${name} cluster IP`);
  out.natServices.push(`-A KUBE-SERVICES ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j ${svc}`);
  if (hasExternal) {
    for (const ip of sp.externalIPs) out.natServices.push(`-A KUBE-SERVICES ${comment(`${name} external IP`)} ${proto} -d ${ip} --dport ${sp.port} -j ${ext}`);
    for (const ip of sp.loadBalancerIPs) out.natServices.push(`-A KUBE-SERVICES ${comment(`${name} loadbalancer IP`)} ${proto} -d ${ip} --dport ${sp.port} -j ${ext}`);
    if (sp.nodePort !== 0) out.natNodePorts.push(`-A KUBE-NODEPORTS ${comment(name)} ${proto} --dport ${sp.nodePort} -j ${ext}`);
  }

  // KUBE-SVC: masquerade off-cluster sources, then spread over the endpoints.
  const svcRules: string[] = [];
  if (cfg.masqueradeAll) {
    svcRules.push(`-A ${svc} ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j KUBE-MARK-MASQ`);
  } else if (cfg.clusterCIDR) {
    svcRules.push(`-A ${svc} ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} ! -s ${cfg.clusterCIDR} -j KUBE-MARK-MASQ`);
  }
  const sepRules = new Map<string, string[]>();
  clusterEndpoints.forEach((ep, i) => {
    const epStr = endpointString(ep);
    const sep = sepChain(sp, epStr);
    const n = clusterEndpoints.length - i;
    const stat = n > 1 ? ` -m statistic --mode random --probability ${probability(n)}` : '';
    svcRules.push(`-A ${svc} ${comment(`${name} -> ${epStr}`)}${stat} -j ${sep}`);
    sepRules.set(sep, [
      `-A ${sep} ${comment(name)} -s ${ep.address} -j KUBE-MARK-MASQ`,
      `-A ${sep} ${comment(name)} ${proto} -j DNAT --to-destination ${epStr}`,
    ]);
  });
  out.natChains.set(svc, svcRules);

  // KUBE-EXT: traffic to external destinations is masqueraded (policy Cluster), then load-balanced.
  if (hasExternal) {
    out.natChains.set(ext, [
      `-A ${ext} ${comment(`masquerade traffic for ${name} external destinations`)} -j KUBE-MARK-MASQ`,
      `-A ${ext} -j ${svc}`,
    ]);
  }
  for (const [chain, rules] of sepRules) out.natChains.set(chain, rules);
  return out;
}

export interface RestoreInput {
  text: string;
  /** Per-service nat chains written by this input (to know later which are stale). */
  natServiceChains: Set<string>;
  /** Number of rules (-A/-I lines) in the input. */
  ruleCount: number;
  /** The same, per table. */
  rulesByTable: Record<string, number>;
}

export interface FullRenderOptions {
  /** Jump rules missing from the built-in chains, to insert. */
  missingJumps: readonly JumpRule[];
  /** Per-service chains present in the kernel but not wanted any more: flushed and deleted. */
  staleNatChains: Iterable<string>;
}

function jumpLine(j: JumpRule): string {
  const extra = j.extra.length > 0 ? `${j.extra.join(' ')} ` : '';
  return `-I ${j.from} ${extra}${comment(j.comment)} -j ${j.to}`;
}

/**
 * Renders one iptables-restore (--noflush) input that rewrites every chain
 * this agent owns, for the whole snapshot. Declaring a chain (`:NAME - [0:0]`)
 * flushes it, so the result does not depend on what was there before.
 */
export function renderFull(snapshot: Snapshot, cfg: RenderConfig, opts: FullRenderOptions): RestoreInput {
  const mark = markHex(cfg.masqueradeBit);
  const keys = [...snapshot.servicePorts.keys()].sort();
  const filterServices: string[] = [];
  const filterExternal: string[] = [];
  const natServices: string[] = [];
  const natNodePorts: string[] = [];
  const natChains = new Map<string, string[]>();
  for (const key of keys) {
    const r = renderServicePort(snapshot.servicePorts.get(key)!, cfg);
    filterServices.push(...r.filterServices);
    filterExternal.push(...r.filterExternal);
    natServices.push(...r.natServices);
    natNodePorts.push(...r.natNodePorts);
    for (const [c, rules] of r.natChains) natChains.set(c, rules);
  }
  const missing = new Set(opts.missingJumps.map(jumpKey));
  const jumpsFor = (table: 'filter' | 'nat'): string[] =>
    opts.missingJumps.filter((j) => j.table === table && missing.has(jumpKey(j))).map(jumpLine);

  const lines: string[] = [];
  const rulesByTable: Record<string, number> = { filter: 0, nat: 0 };
  let table: 'filter' | 'nat' = 'filter';
  const rules = (rs: string[]): void => {
    for (const r of rs) lines.push(r);
    rulesByTable[table] = (rulesByTable[table] ?? 0) + rs.length;
  };

  lines.push('*filter');
  for (const c of FIXED_CHAINS.filter) lines.push(`:${c} - [0:0]`);
  rules(jumpsFor('filter'));
  rules(filterServices);
  rules(filterExternal);
  rules([
    `-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP`,
    `-A KUBE-FORWARD ${comment('kubernetes forwarding rules')} -m mark --mark ${mark}/${mark} -j ACCEPT`,
    `-A KUBE-FORWARD ${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  ]);
  lines.push('COMMIT');

  lines.push('*nat');
  table = 'nat';
  for (const c of FIXED_CHAINS.nat) lines.push(`:${c} - [0:0]`);
  for (const c of natChains.keys()) lines.push(`:${c} - [0:0]`);
  const stale = [...opts.staleNatChains].filter((c) => !natChains.has(c)).sort();
  for (const c of stale) lines.push(`:${c} - [0:0]`);
  rules(jumpsFor('nat'));
  rules([
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${mark}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`,
    // Clear the mark so a re-traversal (e.g. IPsec) does not masquerade twice.
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`,
    `-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE${cfg.randomFully ? ' --random-fully' : ''}`,
  ]);
  rules(natServices);
  rules([
    `-A KUBE-SERVICES ${comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  ]);
  rules(natNodePorts);
  for (const rs of natChains.values()) rules(rs);
  for (const c of stale) lines.push(`-X ${c}`);
  lines.push('COMMIT');
  lines.push('');
  const ruleCount = Object.values(rulesByTable).reduce((a, b) => a + b, 0);
  return { text: lines.join('\n'), natServiceChains: new Set(natChains.keys()), ruleCount, rulesByTable };
}
