/**
 * Renders the rules of one service port: the per-service chains it owns
 * (KUBE-SVC, KUBE-SVL, KUBE-EXT, KUBE-FW, KUBE-SEP) and the rules it adds to
 * the shared chains (KUBE-SERVICES, KUBE-NODEPORTS, ...). Pure: the output
 * depends only on the service port and the RenderConfig. Follows upstream's
 * iptables proxier (syncProxyRules / writeServiceToEndpointRules), rule for
 * rule:
 *
 * - internal traffic (ClusterIP) goes to the internal policy chain: KUBE-SVC
 *   (Cluster) or KUBE-SVL (Local, this node's endpoints only);
 * - external traffic (external IPs, LoadBalancer IPs, NodePorts) goes to
 *   KUBE-EXT, through KUBE-FW first for a LoadBalancer IP with
 *   loadBalancerSourceRanges. KUBE-EXT masquerades and goes to KUBE-SVC
 *   (Cluster), or short-circuits pod and node-originated traffic to KUBE-SVC
 *   and sends the rest, unmasqueraded, to KUBE-SVL (Local);
 * - traffic with nowhere to go is refused in filter: REJECT when the service
 *   has no endpoint at all, DROP when only this node has none (Local policy).
 */
import {
  categorizeEndpoints,
  endpointString,
  externalPolicyLocal,
  internalPolicyLocal,
  isExternallyAccessible,
  usesClusterEndpoints,
  usesLocalEndpoints,
} from '../../agent/model/endpoint-selection.js';
import type { Endpoint, ServicePort } from '../../agent/model/types.js';
import { cidrContains, parseCIDR, parseIP } from '../../agent/util/addr.js';
import type { SharedChainId } from './layout.js';
import { extChain, fwChain, sepChain, svcChain, svlChain } from './names.js';
import type { RenderConfig } from './render.js';
import { comment, probability, rule } from './rule-text.js';

export interface ServiceChain {
  /** Every per-service chain is in nat (a full input streams them there: FullRestoreInput). */
  table: 'nat';
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

function add(out: RenderedServicePort, id: SharedChainId, line: string): void {
  let rs = out.shared.get(id);
  if (!rs) out.shared.set(id, (rs = []));
  rs.push(line);
}

function protoMatch(sp: ServicePort): string {
  const p = sp.protocol.toLowerCase();
  return `-m ${p} -p ${p}`;
}

/** Where filter sends traffic that has no endpoint to go to. */
interface FilterTarget {
  target: 'REJECT' | 'DROP';
  comment: string;
}

export function renderServicePort(sp: ServicePort, cfg: RenderConfig): RenderedServicePort {
  const out: RenderedServicePort = { chains: [], shared: new Map() };
  const name = sp.displayName;
  const proto = protoMatch(sp);
  const svc = svcChain(sp);
  const svl = svlChain(sp);
  const ext = extChain(sp);
  const fw = fwChain(sp);

  const sel = categorizeEndpoints(sp, { nodeName: cfg.nodeName ?? '', zone: cfg.nodeZone ?? '' });
  const hasEndpoints = sel.hasAnyEndpoints;
  const hasLocal = sel.localEndpoints.length > 0;
  const usesClusterChain = sel.clusterEndpoints.length > 0 && usesClusterEndpoints(sp);
  const usesLocalChain = hasLocal && usesLocalEndpoints(sp);

  const iLocal = internalPolicyLocal(sp);
  const internalChain = iLocal ? svl : svc;
  const hasInternal = hasEndpoints && (!iLocal || hasLocal);
  const eLocal = externalPolicyLocal(sp);
  const externalPolicyChain = eLocal ? svl : svc;
  const hasExternal = hasEndpoints && (!eLocal || hasLocal);
  // Even with no endpoint for external traffic, KUBE-EXT keeps the short-circuit rules.
  const usesExt = hasEndpoints && isExternallyAccessible(sp);
  const usesFW = hasEndpoints && sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
  const lbChain = usesFW ? fw : ext;

  // Used only where the traffic has no endpoint: none anywhere (REJECT), or none on this node (DROP).
  const refused: FilterTarget = !hasEndpoints
    ? { target: 'REJECT', comment: comment(`${name} has no endpoints`) }
    : { target: 'DROP', comment: comment(`${name} has no local endpoints`) };
  const clusterComment = comment(`${name} cluster IP`);
  const toVIP = (ip: string): string => `${proto} -d ${ip} --dport ${sp.port}`;

  // Cluster IP.
  if (hasInternal) add(out, 'nat/KUBE-SERVICES', rule('-A KUBE-SERVICES', clusterComment, toVIP(sp.clusterIP), `-j ${internalChain}`));
  else add(out, 'filter/KUBE-SERVICES', rule('-A KUBE-SERVICES', refused.comment, toVIP(sp.clusterIP), `-j ${refused.target}`));

  // External IPs.
  for (const ip of sp.externalIPs) {
    if (hasEndpoints) add(out, 'nat/KUBE-SERVICES', rule('-A KUBE-SERVICES', comment(`${name} external IP`), toVIP(ip), `-j ${ext}`));
    if (!hasExternal) add(out, 'filter/KUBE-EXTERNAL-SERVICES', rule('-A KUBE-EXTERNAL-SERVICES', refused.comment, toVIP(ip), `-j ${refused.target}`));
  }

  // LoadBalancer IPs: through the firewall chain when source ranges are set; what it
  // does not accept is left un-DNATed and dropped by filter KUBE-PROXY-FIREWALL.
  for (const ip of sp.loadBalancerIPs) {
    if (hasEndpoints) add(out, 'nat/KUBE-SERVICES', rule('-A KUBE-SERVICES', comment(`${name} loadbalancer IP`), toVIP(ip), `-j ${lbChain}`));
    if (usesFW) add(out, 'filter/KUBE-PROXY-FIREWALL', rule('-A KUBE-PROXY-FIREWALL', comment(`${name} traffic not accepted by ${fw}`), toVIP(ip), '-j DROP'));
  }
  if (!hasExternal) {
    for (const ip of sp.loadBalancerIPs) {
      add(out, 'filter/KUBE-EXTERNAL-SERVICES', rule('-A KUBE-EXTERNAL-SERVICES', refused.comment, toVIP(ip), `-j ${refused.target}`));
    }
  }

  // NodePort (not subject to loadBalancerSourceRanges, as upstream).
  if (sp.nodePort !== 0) {
    if (hasEndpoints) add(out, 'nat/KUBE-NODEPORTS', rule('-A KUBE-NODEPORTS', comment(name), proto, `--dport ${sp.nodePort}`, `-j ${ext}`));
    if (!hasExternal) {
      add(
        out,
        'filter/KUBE-EXTERNAL-SERVICES',
        rule('-A KUBE-EXTERNAL-SERVICES', refused.comment, '-m addrtype --dst-type LOCAL', proto, `--dport ${sp.nodePort}`, `-j ${refused.target}`),
      );
    }
  }

  // The health check port is accepted whether or not this node has endpoints.
  if (sp.healthCheckNodePort !== 0) {
    add(out, 'filter/KUBE-NODEPORTS', rule('-A KUBE-NODEPORTS', comment(`${name} health check node port`), '-m tcp -p tcp', `--dport ${sp.healthCheckNodePort}`, '-j ACCEPT'));
  }

  if (!hasEndpoints) return out;

  const svcRules: string[] = [];
  const svlRules: string[] = [];

  // Internal traffic: masquerade what comes from outside the cluster (it may have been
  // routed here from another node), in the internal policy chain, before the endpoints.
  if (hasInternal && (cfg.masqueradeAll || cfg.clusterCIDR)) {
    const notLocal = cfg.masqueradeAll ? '' : `! -s ${cfg.clusterCIDR}`;
    (iLocal ? svlRules : svcRules).push(rule(`-A ${internalChain}`, clusterComment, toVIP(sp.clusterIP), notLocal, '-j KUBE-MARK-MASQ'));
  }

  if (usesExt) out.chains.push({ table: 'nat', name: ext, rules: externalChainRules(sp, cfg, { ext, svc, externalPolicyChain, hasExternal, eLocal }) });
  if (usesFW) out.chains.push({ table: 'nat', name: fw, rules: firewallChainRules(sp, cfg, fw, ext) });

  const sepOf = sepNames(sp);
  if (usesClusterChain) {
    svcRules.push(...endpointRules(sp, cfg, sepOf, svc, sel.clusterEndpoints));
    out.chains.push({ table: 'nat', name: svc, rules: svcRules });
  }
  if (usesLocalChain) {
    svlRules.push(...endpointRules(sp, cfg, sepOf, svl, sel.localEndpoints));
    out.chains.push({ table: 'nat', name: svl, rules: svlRules });
  }
  for (const ep of sel.allReachableEndpoints) out.chains.push(endpointChain(sp, cfg, sepOf, ep));
  return out;
}

function externalChainRules(
  sp: ServicePort,
  cfg: RenderConfig,
  c: { ext: string; svc: string; externalPolicyChain: string; hasExternal: boolean; eLocal: boolean },
): string[] {
  const name = sp.displayName;
  const rules: string[] = [];
  if (!c.eLocal) {
    // Cluster policy: the endpoint may be on another node, so the reply must come back here.
    rules.push(rule(`-A ${c.ext}`, comment(`masquerade traffic for ${name} external destinations`), '-j KUBE-MARK-MASQ'));
  } else {
    // Local policy keeps the client's source address; but pods reaching an external
    // address are treated as if they had gone out to the load balancer and come back
    // (no traffic policy), and so is the node itself, which must be masqueraded since
    // its source address would be the (local) destination.
    if (cfg.clusterCIDR) {
      rules.push(rule(`-A ${c.ext}`, comment(`pod traffic for ${name} external destinations`), `-s ${cfg.clusterCIDR}`, `-j ${c.svc}`));
    }
    rules.push(rule(`-A ${c.ext}`, comment(`masquerade LOCAL traffic for ${name} external destinations`), '-m addrtype --src-type LOCAL', '-j KUBE-MARK-MASQ'));
    rules.push(rule(`-A ${c.ext}`, comment(`route LOCAL traffic for ${name} external destinations`), '-m addrtype --src-type LOCAL', `-j ${c.svc}`));
  }
  // Anything else goes to the external policy chain, if it has endpoints (else filter drops it).
  if (c.hasExternal) rules.push(rule(`-A ${c.ext}`, `-j ${c.externalPolicyChain}`));
  return rules;
}

function firewallChainRules(sp: ServicePort, cfg: RenderConfig, fw: string, ext: string): string[] {
  const lbComment = comment(`${sp.displayName} loadbalancer IP`);
  const rules = sp.loadBalancerSourceRanges.map((cidr) => rule(`-A ${fw}`, lbComment, `-s ${cidr}`, `-j ${ext}`));
  // A VIP-style load balancer IP is often also a local address of the node: a request
  // from the node to it then loops back with the LB IP as its source. Admit those
  // when the ranges admit the node itself.
  if (cfg.nodeIP !== undefined && sp.loadBalancerSourceRanges.some((cidr) => contains(cidr, cfg.nodeIP!))) {
    for (const ip of sp.loadBalancerIPs) rules.push(rule(`-A ${fw}`, lbComment, `-s ${ip}`, `-j ${ext}`));
  }
  // No target: what reaches the end is not DNATed, and KUBE-PROXY-FIREWALL drops it.
  rules.push(rule(`-A ${fw}`, comment(`other traffic to ${sp.displayName} will be dropped by KUBE-PROXY-FIREWALL`)));
  return rules;
}

function contains(cidr: string, ip: string): boolean {
  const c = parseCIDR(cidr);
  const a = parseIP(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a.address);
}

/** Per-endpoint comments, left out in large-cluster mode (as upstream, to save 40% of the text). */
function endpointComment(cfg: RenderConfig, text: string): string {
  return cfg.largeClusterMode ? '' : comment(text);
}

/**
 * Each endpoint's `address:port` and KUBE-SEP chain name, for one
 * rendering: hashed once per endpoint even when several chains jump to it
 * (the same Endpoint object is in every list that has it). Not kept across
 * renderings: that would hold a name per endpoint for as long as the port
 * lives (35 MB at 100,000 endpoints), to save a full resync ~1 µs per
 * endpoint.
 */
type SepNames = (ep: Endpoint) => { epStr: string; sep: string };

function sepNames(sp: ServicePort): SepNames {
  const m = new Map<Endpoint, { epStr: string; sep: string }>();
  return (ep) => {
    let n = m.get(ep);
    if (n === undefined) {
      const epStr = endpointString(ep);
      m.set(ep, (n = { epStr, sep: sepChain(sp, epStr) }));
    }
    return n;
  };
}

/** A policy chain (KUBE-SVC or KUBE-SVL): session affinity checks first, then random load balancing. */
function endpointRules(sp: ServicePort, cfg: RenderConfig, sepOf: SepNames, chain: string, endpoints: readonly Endpoint[]): string[] {
  const rules: string[] = [];
  const seps = endpoints.map((ep) => {
    const n = sepOf(ep);
    return { ep: n.epStr, sep: n.sep };
  });
  if (sp.sessionAffinity === 'ClientIP') {
    for (const { ep, sep } of seps) {
      rules.push(
        rule(`-A ${chain}`, endpointComment(cfg, `${sp.displayName} -> ${ep}`), `-m recent --name ${sep} --rcheck --seconds ${sp.sessionAffinityTimeoutSeconds} --reap`, `-j ${sep}`),
      );
    }
  }
  seps.forEach(({ ep, sep }, i) => {
    const left = seps.length - i;
    const stat = left > 1 ? `-m statistic --mode random --probability ${probability(left)}` : '';
    rules.push(rule(`-A ${chain}`, endpointComment(cfg, `${sp.displayName} -> ${ep}`), stat, `-j ${sep}`));
  });
  return rules;
}

/** KUBE-SEP: hairpin masquerade, affinity record, DNAT. */
function endpointChain(sp: ServicePort, cfg: RenderConfig, sepOf: SepNames, ep: Endpoint): ServiceChain {
  const { epStr, sep } = sepOf(ep);
  const c = endpointComment(cfg, sp.displayName);
  const p = sp.protocol.toLowerCase();
  const affinity = sp.sessionAffinity === 'ClientIP' ? `-m recent --name ${sep} --set` : '';
  return {
    table: 'nat',
    name: sep,
    rules: [rule(`-A ${sep}`, c, `-s ${ep.address}`, '-j KUBE-MARK-MASQ'), rule(`-A ${sep}`, c, affinity, `-m ${p} -p ${p}`, `-j DNAT --to-destination ${epStr}`)],
  };
}
