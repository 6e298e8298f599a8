/**
 * The fixed part of the kube-proxy table, as upstream's nftables proxier
 * sets it up (setupNFTables): base chains and their priorities, the jumps
 * into the regular chains, the dispatch maps and sets, masquerading, the
 * no-endpoint and cluster-IP checks. Pure.
 *
 *   prerouting  filter-prerouting-pre-dnat (-110) → firewall-check (@firewall-ips)
 *               nat-prerouting (dstnat, -100)      → services (@service-ips, @service-nodeports)
 *   input       filter-input (filter, 0)           → nodeport-endpoints-check, service-endpoints-check
 *   forward     filter-forward (filter, 0)         → service-endpoints-check, cluster-ips-check
 *   output      filter-output-pre-dnat (-110)      → firewall-check
 *               nat-output (dstnat, -100)          → services
 *               filter-output (filter, 0)          → service-endpoints-check, cluster-ips-check
 *   postrouting nat-postrouting (srcnat, 100)      → masquerading
 */
import ipaddr from 'ipaddr.js';
import { familyServiceCIDRs, markHex, nftFamily, sharedLayout } from './config.js';
import type { NftRenderConfig } from './config.js';
import * as N from './names.js';
import type { ChainObj, MapObj, SetObj } from './nft/objects.js';
import type { RuleSpec } from './render-service.js';

export const BASE_CHAINS: readonly Required<Pick<ChainObj, 'name' | 'type' | 'hook' | 'priority'>>[] = [
  // Filtering on pre-DNAT destinations must run before DNAT.
  { name: N.FILTER_PREROUTING_PRE_DNAT, type: 'filter', hook: 'prerouting', priority: -110 },
  { name: N.FILTER_OUTPUT_PRE_DNAT, type: 'filter', hook: 'output', priority: -110 },
  { name: N.FILTER_INPUT, type: 'filter', hook: 'input', priority: 0 },
  { name: N.FILTER_FORWARD, type: 'filter', hook: 'forward', priority: 0 },
  { name: N.FILTER_OUTPUT, type: 'filter', hook: 'output', priority: 0 },
  { name: N.NAT_PREROUTING, type: 'nat', hook: 'prerouting', priority: -100 },
  { name: N.NAT_OUTPUT, type: 'nat', hook: 'output', priority: -100 },
  { name: N.NAT_POSTROUTING, type: 'nat', hook: 'postrouting', priority: 100 },
];

/** Jumps from the base chains, in order (as upstream's nftablesJumpChains). */
const JUMPS: readonly { from: string; to: string; match: string }[] = [
  { from: N.FILTER_INPUT, to: N.NODEPORT_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: N.FILTER_INPUT, to: N.SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: N.FILTER_FORWARD, to: N.SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: N.FILTER_OUTPUT, to: N.SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: N.FILTER_PREROUTING_PRE_DNAT, to: N.FIREWALL_CHECK, match: 'ct state new' },
  { from: N.FILTER_OUTPUT_PRE_DNAT, to: N.FIREWALL_CHECK, match: 'ct state new' },
  { from: N.NAT_OUTPUT, to: N.SERVICES_CHAIN, match: '' },
  { from: N.NAT_PREROUTING, to: N.SERVICES_CHAIN, match: '' },
  { from: N.NAT_POSTROUTING, to: N.MASQUERADING_CHAIN, match: '' },
  { from: N.FILTER_FORWARD, to: N.CLUSTER_IPS_CHECK, match: 'ct state new' },
  { from: N.FILTER_OUTPUT, to: N.CLUSTER_IPS_CHECK, match: 'ct state new' },
];

/** The fixed regular chains (comment where upstream has one). */
export const REGULAR_CHAINS: readonly { name: string; comment?: string }[] = [
  { name: N.NODEPORT_ENDPOINTS_CHECK },
  { name: N.SERVICE_ENDPOINTS_CHECK },
  { name: N.FIREWALL_CHECK },
  { name: N.SERVICES_CHAIN },
  { name: N.MASQUERADING_CHAIN },
  { name: N.CLUSTER_IPS_CHECK },
  { name: N.MARK_MASQ_CHAIN },
  { name: N.REJECT_CHAIN, comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' },
];

export const FIXED_CHAIN_NAMES: ReadonlySet<string> = new Set([...BASE_CHAINS.map((c) => c.name), ...REGULAR_CHAINS.map((c) => c.name)]);

/** NodePorts on every local address (no --nodeport-addresses): `fib daddr type local`. */
export const nodePortsMatchAll = (cfg: NftRenderConfig): boolean => cfg.nodePortAddresses === undefined;

const addrType = (cfg: NftRenderConfig): string => ((cfg.family ?? 'IPv4') === 'IPv6' ? 'ipv6_addr' : 'ipv4_addr');

/** The fixed sets and maps (nodeport-ips only when --nodeport-addresses narrows the NodePort addresses). */
export function fixedSets(cfg: NftRenderConfig): (SetObj | MapObj)[] {
  const a = addrType(cfg);
  const x = nftFamily(cfg);
  const out: (SetObj | MapObj)[] = [
    { kind: 'set', name: N.CLUSTER_IPS_SET, type: a, comment: 'Active ClusterIPs' },
    { kind: 'map', name: N.FIREWALL_IPS_MAP, type: `${a} . inet_proto . inet_service : verdict`, comment: 'destinations that are subject to LoadBalancerSourceRanges' },
    { kind: 'map', name: N.NO_ENDPOINT_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict', comment: 'vmap to drop or reject packets to service nodeports with no endpoints' },
    { kind: 'map', name: N.NO_ENDPOINT_SERVICES_MAP, type: `${a} . inet_proto . inet_service : verdict`, comment: 'vmap to drop or reject packets to services with no endpoints' },
    { kind: 'map', name: N.SERVICE_IPS_MAP, type: `${a} . inet_proto . inet_service : verdict`, comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' },
    { kind: 'map', name: N.SERVICE_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' },
  ];
  if (sharedLayout(cfg)) {
    // The shared load balancing (lb-chains.ts): endpoints by destination and index, one map per protocol.
    for (const p of N.LB_PROTOCOLS) {
      for (const local of [false, true]) {
        const what = local ? 'local endpoints' : 'endpoints';
        out.push({ kind: 'map', name: N.endpointsMap('service', local, p), typeOf: `${x} daddr . ${p} dport . numgen random mod 1 : ${x} daddr . ${p} dport`, comment: `${p} service ${what} by index` });
        out.push({ kind: 'map', name: N.endpointsMap('nodeport', local, p), typeOf: `${p} dport . numgen random mod 1 : ${x} daddr . ${p} dport`, comment: `${p} NodePort ${what} by index` });
      }
    }
    out.push({ kind: 'set', name: N.HAIRPIN_SET, type: `${a} . ${a}`, comment: 'endpoints reaching themselves through a service' });
  }

  if (!nodePortsMatchAll(cfg)) out.splice(1, 0, { kind: 'set', name: N.NODEPORT_IPS_SET, type: a, comment: 'IPs that accept NodePort traffic' });
  return out;
}

/** The set nodeport-ips's definition, whether used or not (to delete it when unused). */
export function nodePortIPsSet(cfg: NftRenderConfig): SetObj {
  return { kind: 'set', name: N.NODEPORT_IPS_SET, type: addrType(cfg), comment: 'IPs that accept NodePort traffic' };
}

/** The NodePort addresses that go into nodeport-ips (never loopback: localhost NodePorts do not exist in nftables mode). */
export function nodePortIPs(cfg: NftRenderConfig): string[] {
  return (cfg.nodePortAddresses ?? []).filter((ip) => ipaddr.parse(ip).range() !== 'loopback');
}

/** The rules of the fixed chains, by chain, in order. */
export function fixedRules(cfg: NftRenderConfig): Map<string, RuleSpec[]> {
  const x = nftFamily(cfg);
  const mark = markHex(cfg.masqueradeBit);
  const noLocalhost = x === 'ip6' ? 'ip6 daddr != ::1' : 'ip daddr != 127.0.0.0/8';
  const out = new Map<string, RuleSpec[]>();
  const add = (chainName: string, rule: string, comment?: string): void => {
    let rs = out.get(chainName);
    if (!rs) out.set(chainName, (rs = []));
    rs.push(comment === undefined ? { rule } : { rule, comment });
  };
  for (const j of JUMPS) add(j.from, j.match === '' ? `jump ${j.to}` : `${j.match} jump ${j.to}`);

  add(N.MARK_MASQ_CHAIN, `mark set mark or ${mark}`);
  if (sharedLayout(cfg)) add(N.MASQUERADING_CHAIN, `ct status dnat ${x} saddr . ${x} daddr @${N.HAIRPIN_SET} jump ${N.MARK_MASQ_CHAIN}`, 'hairpin: an endpoint reaching itself through a service');
  add(N.MASQUERADING_CHAIN, `mark and ${mark} == 0 return`);
  add(N.MASQUERADING_CHAIN, `mark set mark xor ${mark}`);
  add(N.MASQUERADING_CHAIN, 'masquerade fully-random');

  add(N.CLUSTER_IPS_CHECK, `${x} daddr @${N.CLUSTER_IPS_SET} reject`, 'Reject traffic to invalid ports of ClusterIPs');
  const cidrs = familyServiceCIDRs(cfg);
  if (cidrs.length > 0) add(N.CLUSTER_IPS_CHECK, `${x} daddr { ${cidrs.join(', ')} } drop`, 'Drop traffic to unallocated ClusterIPs');

  add(N.REJECT_CHAIN, 'reject');
  add(N.SERVICE_ENDPOINTS_CHECK, `${x} daddr . meta l4proto . th dport vmap @${N.NO_ENDPOINT_SERVICES_MAP}`);
  add(N.FIREWALL_CHECK, `${x} daddr . meta l4proto . th dport vmap @${N.FIREWALL_IPS_MAP}`);
  add(N.SERVICES_CHAIN, `${x} daddr . meta l4proto . th dport vmap @${N.SERVICE_IPS_MAP}`);
  if (nodePortsMatchAll(cfg)) {
    add(N.NODEPORT_ENDPOINTS_CHECK, `${noLocalhost} meta l4proto . th dport vmap @${N.NO_ENDPOINT_NODEPORTS_MAP}`);
    add(N.SERVICES_CHAIN, `fib daddr type local ${noLocalhost} meta l4proto . th dport vmap @${N.SERVICE_NODEPORTS_MAP}`);
  } else {
    add(N.NODEPORT_ENDPOINTS_CHECK, `${x} daddr @${N.NODEPORT_IPS_SET} meta l4proto . th dport vmap @${N.NO_ENDPOINT_NODEPORTS_MAP}`);
    add(N.SERVICES_CHAIN, `${x} daddr @${N.NODEPORT_IPS_SET} meta l4proto . th dport vmap @${N.SERVICE_NODEPORTS_MAP}`);
  }
  return out;
}
