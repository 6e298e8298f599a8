/**
 * Renders the rules of one service port: the per-service chains it owns
 * (KUBE-SVC, KUBE-EXT, KUBE-SEP, ...) and the rules it adds to the shared
 * chains (KUBE-SERVICES, KUBE-NODEPORTS, ...). Pure; follows upstream's
 * iptables proxier.
 */
import { categorizeEndpoints, endpointString } from '../../agent/model/endpoint-selection.js';
import type { ServicePort } from '../../agent/model/types.js';
import type { SharedChainId } from './layout.js';
import { extChain, sepChain, svcChain } from './names.js';
import type { RenderConfig } from './render.js';
import type { Table } from './restore-input.js';
import { comment, probability } from './rule-text.js';

export interface ServiceChain {
  table: Table;
  name: string;
  rules: string[];
}

/** The rules one service port contributes. */
export interface RenderedServicePort {
  /** Per-service chains, in writing order. */
  chains: ServiceChain[];
  /** Rules added to shared chains, by shared chain id (`nat/KUBE-SERVICES`, ...). */
  shared: Map<SharedChainId, string[]>;
}

function add(out: RenderedServicePort, id: SharedChainId, rule: string): void {
  let rs = out.shared.get(id);
  if (!rs) out.shared.set(id, (rs = []));
  rs.push(rule);
}

function protoMatch(sp: ServicePort): string {
  const p = sp.protocol.toLowerCase();
  return `-m ${p} -p ${p}`;
}

export function renderServicePort(sp: ServicePort, cfg: RenderConfig): RenderedServicePort {
  const out: RenderedServicePort = { chains: [], shared: new Map() };
  const name = sp.displayName;
  const proto = protoMatch(sp);
  const svc = svcChain(sp);
  const ext = extChain(sp);
  const { clusterEndpoints } = categorizeEndpoints(sp);
  const hasEndpoints = clusterEndpoints.length > 0;
  const hasExternal = sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;

  if (!hasEndpoints) {
    const reject = comment(`${name} has no endpoints`);
    add(out, 'filter/KUBE-SERVICES', `-A KUBE-SERVICES ${reject} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j REJECT`);
    for (const ip of sp.externalIPs) add(out, 'filter/KUBE-EXTERNAL-SERVICES', `-A KUBE-EXTERNAL-SERVICES ${reject} ${proto} -d ${ip} --dport ${sp.port} -j REJECT`);
    for (const ip of sp.loadBalancerIPs) add(out, 'filter/KUBE-EXTERNAL-SERVICES', `-A KUBE-EXTERNAL-SERVICES ${reject} ${proto} -d ${ip} --dport ${sp.port} -j REJECT`);
    if (sp.nodePort !== 0) {
      add(out, 'filter/KUBE-EXTERNAL-SERVICES', `-A KUBE-EXTERNAL-SERVICES ${reject} -m addrtype --dst-type LOCAL ${proto} --dport ${sp.nodePort} -j REJECT`);
    }
    return out;
  }

  // Dispatch from KUBE-SERVICES / KUBE-NODEPORTS.
  const clusterComment = comment(`${name} cluster IP`);
  add(out, 'nat/KUBE-SERVICES', `-A KUBE-SERVICES ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j ${svc}`);
  if (hasExternal) {
    for (const ip of sp.externalIPs) add(out, 'nat/KUBE-SERVICES', `-A KUBE-SERVICES ${comment(`${name} external IP`)} ${proto} -d ${ip} --dport ${sp.port} -j ${ext}`);
    for (const ip of sp.loadBalancerIPs) add(out, 'nat/KUBE-SERVICES', `-A KUBE-SERVICES ${comment(`${name} loadbalancer IP`)} ${proto} -d ${ip} --dport ${sp.port} -j ${ext}`);
    if (sp.nodePort !== 0) add(out, 'nat/KUBE-NODEPORTS', `-A KUBE-NODEPORTS ${comment(name)} ${proto} --dport ${sp.nodePort} -j ${ext}`);
  }

  // KUBE-SVC: masquerade off-cluster sources, then spread over the endpoints.
  const svcRules: string[] = [];
  if (cfg.masqueradeAll) {
    svcRules.push(`-A ${svc} ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} -j KUBE-MARK-MASQ`);
  } else if (cfg.clusterCIDR) {
    svcRules.push(`-A ${svc} ${clusterComment} ${proto} -d ${sp.clusterIP} --dport ${sp.port} ! -s ${cfg.clusterCIDR} -j KUBE-MARK-MASQ`);
  }
  const seps: ServiceChain[] = [];
  clusterEndpoints.forEach((ep, i) => {
    const epStr = endpointString(ep);
    const sep = sepChain(sp, epStr);
    const n = clusterEndpoints.length - i;
    const stat = n > 1 ? ` -m statistic --mode random --probability ${probability(n)}` : '';
    svcRules.push(`-A ${svc} ${comment(`${name} -> ${epStr}`)}${stat} -j ${sep}`);
    seps.push({
      table: 'nat',
      name: sep,
      rules: [`-A ${sep} ${comment(name)} -s ${ep.address} -j KUBE-MARK-MASQ`, `-A ${sep} ${comment(name)} ${proto} -j DNAT --to-destination ${epStr}`],
    });
  });
  out.chains.push({ table: 'nat', name: svc, rules: svcRules });

  // KUBE-EXT: traffic to external destinations is masqueraded (policy Cluster), then load-balanced.
  if (hasExternal) {
    out.chains.push({
      table: 'nat',
      name: ext,
      rules: [`-A ${ext} ${comment(`masquerade traffic for ${name} external destinations`)} -j KUBE-MARK-MASQ`, `-A ${ext} -j ${svc}`],
    });
  }
  out.chains.push(...seps);
  return out;
}
