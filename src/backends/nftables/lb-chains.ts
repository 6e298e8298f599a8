/**
 * Shared load balancing: this project's layout for service ports without
 * session affinity (upstream writes one chain per service port and one per
 * endpoint; nft 1.0.6 reads every chain of the table before any change, so
 * 110,000 chains cost over a second per sync whatever changes).
 *
 * A port's endpoints are elements of a shared DNAT map of its protocol,
 * keyed by what the packet carries plus an index: `daddr . dport . i`
 * (ClusterIPs, external and LoadBalancer IPs: `service-endpoints-tcp`, ...)
 * or `nodePort . i` (`nodeport-endpoints-tcp`, ...). The dispatch maps send
 * the packet to a chain shared by every port of that protocol with the same
 * endpoint count, which masquerades as upstream's per-service chains would
 * and picks the index with `numgen random mod N` (P: tcp, udp or sctp):
 *
 *   lb-internal-P-N          traffic to a ClusterIP: masquerade what comes from outside the pod
 *                            CIDR (all of it with masqueradeAll), DNAT through @service-endpoints-P
 *   lb-external-P-N          external IPs and LoadBalancer IPs, externalTrafficPolicy Cluster:
 *                            masquerade, DNAT through @service-endpoints-P
 *   lb-nodeport-P-N          NodePorts, policy Cluster: masquerade, DNAT through @nodeport-endpoints-P
 *   lb-external-local-P-C-L  external IPs and LoadBalancer IPs, policy Local: pods and the node
 *                            itself are short-circuited to the C cluster endpoints (the node
 *                            masqueraded), the rest goes to the L local endpoints
 *                            (@service-local-endpoints-P) keeping its source; L = 0: nothing
 *                            here, the filter chains drop it
 *   lb-nodeport-local-P-C-L  the same for NodePorts
 *
 * One map per protocol because the port in the map's data must be typed by
 * a protocol (`udp dport`): nft 1.0.6 refuses, in any later transaction, a
 * rule using a map whose data is typed `th dport` ("conflicting protocols
 * specified"), and a protocol's type makes nft match that protocol first.
 *
 * Hairpin (an endpoint reaching itself through its service) is one rule in
 * the masquerading chain: a DNATed packet whose source and destination are the
 * same endpoint address (@hairpin-endpoints) is masqueraded. Pure.
 */
import { nftFamily } from './config.js';
import type { NftRenderConfig } from './config.js';
import { endpointsMap, MARK_MASQ_CHAIN } from './names.js';
import type { ChainSpec, RuleSpec } from './render-service.js';

export type LbTarget = 'internal' | 'external' | 'nodeport';

/** The shared chain for `target` traffic of protocol `proto` (tcp, udp, sctp) with `cluster` Cluster-policy endpoints, or, under an external Local policy, `local` local ones too. */
export function lbChainName(target: LbTarget, proto: string, cluster: number, local?: number): string {
  return local === undefined ? `lb-${target}-${proto}-${cluster}` : `lb-${target}-local-${proto}-${cluster}-${local}`;
}

/** `dnat ip to <key> . numgen random mod N map @m` for a target's key. */
function dnat(cfg: NftRenderConfig, target: LbTarget, proto: string, n: number, mapName: string): string {
  const x = nftFamily(cfg);
  const key = target === 'nodeport' ? `${proto} dport` : `${x} daddr . ${proto} dport`;
  return `dnat ${x} to ${key} . numgen random mod ${n} map @${mapName}`;
}

/** Shared chains already made, by everything they depend on: every port using one holds the same object. */
const made = new Map<string, ChainSpec>();

/** The rules of a shared chain (podCIDR: the pod CIDR of this family, canonical, or undefined). */
export function lbChain(cfg: NftRenderConfig, podCIDR: string | undefined, target: LbTarget, proto: string, cluster: number, local?: number): ChainSpec {
  const id = [cfg.family ?? 'IPv4', cfg.masqueradeAll, podCIDR, target, proto, cluster, local].join('|');
  const known = made.get(id);
  if (known) return known;
  if (made.size > 10_000) made.clear();
  const c = makeLbChain(cfg, podCIDR, target, proto, cluster, local);
  made.set(id, c);
  return c;
}

function makeLbChain(cfg: NftRenderConfig, podCIDR: string | undefined, target: LbTarget, proto: string, cluster: number, local?: number): ChainSpec {
  const x = nftFamily(cfg);
  const name = lbChainName(target, proto, cluster, local);
  const clusterMap = endpointsMap(target === 'nodeport' ? 'nodeport' : 'service', false, proto);
  const localMap = endpointsMap(target === 'nodeport' ? 'nodeport' : 'service', true, proto);
  const rules: RuleSpec[] = [];
  if (target === 'internal') {
    // Traffic to a ClusterIP from outside the cluster may have been routed here from elsewhere.
    if (cfg.masqueradeAll) rules.push({ rule: `jump ${MARK_MASQ_CHAIN}` });
    else if (podCIDR) rules.push({ rule: `${x} saddr != ${podCIDR} jump ${MARK_MASQ_CHAIN}` });
    rules.push({ rule: dnat(cfg, target, proto, cluster, clusterMap) });
  } else if (local === undefined) {
    // The endpoint may be on another node: the reply must come back through this one.
    rules.push({ rule: `jump ${MARK_MASQ_CHAIN}` });
    rules.push({ rule: dnat(cfg, target, proto, cluster, clusterMap) });
  } else {
    // Pods reaching an external address are treated as if they went out to the load balancer and came
    // back (no traffic policy); so is the node itself, masqueraded since its source would be the LB IP.
    if (podCIDR) rules.push({ rule: `${x} saddr ${podCIDR} ${dnat(cfg, target, proto, cluster, clusterMap)}`, comment: 'short-circuit pod traffic' });
    rules.push({ rule: `fib saddr type local jump ${MARK_MASQ_CHAIN}`, comment: 'masquerade local traffic' });
    rules.push({ rule: `fib saddr type local ${dnat(cfg, target, proto, cluster, clusterMap)}`, comment: 'short-circuit local traffic' });
    if (local > 0) rules.push({ rule: dnat(cfg, target, proto, local, localMap) });
  }
  return { name, rules };
}
