/**
 * What one service port contributes to the kube-proxy table. Pure: depends
 * only on the service port and the config.
 *
 * - Elements of the shared maps and sets: its ClusterIP in `cluster-ips`;
 *   `service-ips` (ClusterIP, external and LoadBalancer IPs → the chain that
 *   load-balances them), `service-nodeports`, `firewall-ips` (LoadBalancer
 *   IPs with source ranges → `firewall-` chain), and, where traffic has
 *   nowhere to go, `no-endpoint-services` / `no-endpoint-nodeports` (`goto
 *   reject-chain` when the service has no endpoint at all, `drop` when only a
 *   Local policy has none on this node).
 * - Without session affinity (most ports): its endpoints as elements of the
 *   shared DNAT maps of its protocol (`service-endpoints-tcp`,
 *   `nodeport-endpoints-tcp`, and their `-local-` twins under
 *   externalTrafficPolicy Local), its endpoint
 *   addresses in `hairpin-endpoints`, and the shared `lb-…` chains it sends
 *   traffic to (lb-chains.ts). No chain of its own but `firewall-`.
 * - With session affinity ClientIP: upstream's per-service chains
 *   (syncProxyRules / writeServiceToEndpointRules): `service-` (Cluster
 *   policy), `local-` (this node's endpoints), `external-` (masquerade or
 *   short-circuit, then the external policy chain), `firewall-`; the
 *   endpoints inline in the policy chains with one affinity set for the port
 *   (affinity.ts), their addresses in `hairpin-endpoints`.
 * - With `layout: 'upstream'`, every port as upstream writes it, rule for
 *   rule: those chains plus one `endpoint-` chain per endpoint (hairpin
 *   masquerade, affinity update, DNAT) and, with session affinity, an
 *   `affinity-` set per endpoint checked before `numgen random mod N vmap
 *   { 0 : goto endpoint-…, … }`.
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
import { cidrContains, parseCIDR } from '../../agent/util/addr.js';
import type { ParsedCIDR } from '../../agent/util/addr.js';
import { sharedLayout } from './config.js';
import type { NftRenderConfig } from './config.js';
import type { ElementObj } from './nft/objects.js';
import {
  affinitySet,
  CLUSTER_IPS_SET,
  endpointChain,
  FIREWALL_IPS_MAP,
  endpointsMap,
  HAIRPIN_SET,
  MARK_MASQ_CHAIN,
  NO_ENDPOINT_NODEPORTS_MAP,
  NO_ENDPOINT_SERVICES_MAP,
  REJECT_CHAIN,
  SERVICE_IPS_MAP,
  SERVICE_NODEPORTS_MAP,
  servicePortChains,
} from './names.js';
import type { ServicePortChainNames } from './names.js';
import { lbChain } from './lb-chains.js';
import { affinityPortSet, inlineEndpointRules } from './affinity.js';
import type { LbTarget } from './lb-chains.js';

export interface RuleSpec {
  rule: string;
  comment?: string;
}

export interface ChainSpec {
  name: string;
  rules: RuleSpec[];
}

export interface AffinitySetSpec {
  name: string;
  /** ipv4_addr or ipv6_addr (upstream's per-endpoint sets); or typeOf. */
  type?: string;
  /** `ip saddr . numgen random mod 1` (this project's per-port sets, affinity.ts). */
  typeOf?: string;
  timeout: number;
  size?: number;
}

/** An element of one of the shared maps or sets. */
export interface ElementSpec {
  container: string;
  key: string[];
  /** Maps only. */
  value?: string[];
  comment?: string;
}

export interface RenderedServicePort {
  /** Its own chains, in writing order. */
  chains: ChainSpec[];
  /** The shared load-balancing chains it sends traffic to (they exist while some port uses them). */
  shared: ChainSpec[];
  /** Its session affinity sets. */
  sets: AffinitySetSpec[];
  /** Its elements in the shared maps and sets. */
  elements: ElementSpec[];
}

/** Whether a container of service port elements is a map (the others are sets). */
export const isMapContainer = (name: string): boolean => name !== CLUSTER_IPS_SET && name !== HAIRPIN_SET;

/**
 * A service port's element, shaped as the nft element object itself, so a
 * transaction takes it as it is (270,000 at 10,000 services: no copies).
 * Every property is in the literal: one added afterwards would give each
 * object a separate property store.
 */
export function serviceElement(container: string, key: string[], value?: string[], comment?: string): ElementSpec & ElementObj {
  const isMap = isMapContainer(container);
  if (value === undefined) return comment === undefined ? { kind: 'element', container, isMap, key } : { kind: 'element', container, isMap, key, comment };
  return comment === undefined ? { kind: 'element', container, isMap, key, value } : { kind: 'element', container, isMap, key, value, comment };
}

interface EndpointInfo {
  chain: string;
  affinitySet: string;
}

export function renderServicePort(sp: ServicePort, cfg: NftRenderConfig): RenderedServicePort {
  const out: RenderedServicePort = { chains: [], shared: [], sets: [], elements: [] };
  const v6 = (cfg.family ?? 'IPv4') === 'IPv6';
  const ipX = v6 ? 'ip6' : 'ip';
  const proto = sp.protocol.toLowerCase();
  const port = String(sp.port);
  const name = sp.displayName;
  // Chain and set names are hashes: made only when used (most ports in the shared layout use none).
  let chainNames: ServicePortChainNames | undefined;
  const names = (): ServicePortChainNames => (chainNames ??= servicePortChains(sp));

  const podCIDR = canonicalCIDR(cfg.clusterCIDR);
  const sel = categorizeEndpoints(sp, { nodeName: cfg.nodeName ?? '', zone: cfg.nodeZone ?? '' });
  const hasEndpoints = sel.hasAnyEndpoints;
  const info = new Map<Endpoint, EndpointInfo>();
  const epInfo = (ep: Endpoint): EndpointInfo => {
    let i = info.get(ep);
    if (!i) info.set(ep, (i = { chain: endpointChain(sp, ep.address, ep.port), affinitySet: affinitySet(sp, ep.address, ep.port) }));
    return i;
  };

  const usesClusterPolicyChain = sel.clusterEndpoints.length > 0 && usesClusterEndpoints(sp);
  const usesLocalPolicyChain = sel.localEndpoints.length > 0 && usesLocalEndpoints(sp);

  const iLocal = internalPolicyLocal(sp);
  const internalChain = (): string => (iLocal ? names().local : names().cluster);
  const hasInternalEndpoints = hasEndpoints && (!iLocal || sel.localEndpoints.length > 0);
  const eLocal = externalPolicyLocal(sp);
  const externalPolicyChain = (): string => (eLocal ? names().local : names().cluster);
  const hasExternalEndpoints = hasEndpoints && (!eLocal || sel.localEndpoints.length > 0);
  // Even without endpoints for external traffic, the external chain keeps the short-circuit rules.
  const usesExternalChain = hasEndpoints && isExternallyAccessible(sp);
  // The model keeps only the valid source ranges of this family (service-ports.ts, as upstream's
  // MapCIDRsByIPFamily); with none there is no firewall (an empty `{ }` would make nft refuse the transaction).
  const sourceRanges = sp.loadBalancerSourceRanges.flatMap((r) => parseCIDR(r) ?? []);
  const usesFirewallChain = sp.loadBalancerIPs.length > 0 && sourceRanges.length > 0;

  // Where traffic with nowhere to go goes: reject when no endpoint anywhere, drop when only this node has none.
  const internalFilterVerdict = !hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop';
  const externalFilterVerdict = internalFilterVerdict;

  const el = (container: string, key: string[], value?: string[], comment?: string): void => void out.elements.push(serviceElement(container, key, value, comment));
  // Shared layout: a pod reaching itself through the service must see the node as the source (the masquerading chain's hairpin rule).
  const hairpinElements = (): void => {
    for (const ep of sel.allReachableEndpoints) el(HAIRPIN_SET, [[ep.address, ep.address].join(' . ')]);
  };

  // Where the dispatch maps send each kind of traffic: upstream's per-service chains for ports with
  // session affinity, the shared load-balancing chains (lb-chains.ts) for the others.
  const compact = sharedLayout(cfg) && sp.sessionAffinity !== 'ClientIP';
  const internalEps = iLocal ? sel.localEndpoints : sel.clusterEndpoints;
  const lb: Partial<Record<LbTarget, ChainSpec>> = {};
  const lbOf = (t: LbTarget): ChainSpec =>
    (lb[t] ??=
      eLocal && t !== 'internal'
        ? lbChain(cfg, podCIDR, t, proto, sel.clusterEndpoints.length, sel.localEndpoints.length)
        : lbChain(cfg, podCIDR, t, proto, t === 'internal' ? internalEps.length : sel.clusterEndpoints.length));
  const internalTarget = compact ? lbOf('internal').name : internalChain();
  const externalTarget = compact ? lbOf('external').name : names().external;
  const nodePortTarget = compact ? lbOf('nodeport').name : names().external;
  // The shared chains do not name the service: its dispatch elements do (upstream's chain names do it otherwise).
  const dispatchComment = compact ? name : undefined;

  // ClusterIP.
  el(CLUSTER_IPS_SET, [sp.clusterIP]);
  if (hasInternalEndpoints) el(SERVICE_IPS_MAP, [sp.clusterIP, proto, port], [`goto ${internalTarget}`], dispatchComment);
  else el(NO_ENDPOINT_SERVICES_MAP, [sp.clusterIP, proto, port], [internalFilterVerdict], name);

  // External IPs.
  for (const ip of sp.externalIPs) {
    if (hasEndpoints) el(SERVICE_IPS_MAP, [ip, proto, port], [`goto ${externalTarget}`], dispatchComment);
    if (!hasExternalEndpoints) el(NO_ENDPOINT_SERVICES_MAP, [ip, proto, port], [externalFilterVerdict], name);
  }

  // LoadBalancer IPs (through the firewall first when source ranges are set).
  for (const ip of sp.loadBalancerIPs) {
    if (hasEndpoints) el(SERVICE_IPS_MAP, [ip, proto, port], [`goto ${externalTarget}`], dispatchComment);
    if (usesFirewallChain) el(FIREWALL_IPS_MAP, [ip, proto, port], [`goto ${names().firewall}`]);
  }
  if (!hasExternalEndpoints) for (const ip of sp.loadBalancerIPs) el(NO_ENDPOINT_SERVICES_MAP, [ip, proto, port], [externalFilterVerdict], name);

  // NodePort (not subject to loadBalancerSourceRanges, as upstream).
  if (sp.nodePort !== 0) {
    if (hasEndpoints) el(SERVICE_NODEPORTS_MAP, [proto, String(sp.nodePort)], [`goto ${nodePortTarget}`], dispatchComment);
    if (!hasExternalEndpoints) el(NO_ENDPOINT_NODEPORTS_MAP, [proto, String(sp.nodePort)], [externalFilterVerdict], name);
  }

  if (compact) {
    // The endpoints, by index, under every key that reaches them; the shared chains pick the index.
    // (Keys and values as one pre-joined part, and one value per endpoint: 270,000 of these at 10,000 services.)
    const values = new Map<Endpoint, string[]>();
    // (join, not a template: one flat string, not a chain of concatenations that is flattened later.)
    const valueOf = (ep: Endpoint): string[] => values.get(ep) ?? values.set(ep, [[ep.address, ep.port].join(' . ')]).get(ep)!;
    const endpointEls = (container: string, key: string, eps: readonly Endpoint[]): void => {
      eps.forEach((ep, i) => el(container, [[key, i].join(' . ')], valueOf(ep)));
    };
    const shared = new Map<string, ChainSpec>();
    const useChain = (t: LbTarget): void => {
      const c = lbOf(t);
      shared.set(c.name, c);
    };
    const svcMap = endpointsMap('service', false, proto);
    const npMap = endpointsMap('nodeport', false, proto);
    if (hasInternalEndpoints) {
      endpointEls(svcMap, `${sp.clusterIP} . ${port}`, internalEps);
      useChain('internal');
    }
    if (hasEndpoints) {
      for (const ip of [...sp.externalIPs, ...sp.loadBalancerIPs]) {
        endpointEls(svcMap, `${ip} . ${port}`, sel.clusterEndpoints);
        if (eLocal) endpointEls(endpointsMap('service', true, proto), `${ip} . ${port}`, sel.localEndpoints);
      }
      if (sp.externalIPs.length + sp.loadBalancerIPs.length > 0) useChain('external');
      if (sp.nodePort !== 0) {
        endpointEls(npMap, String(sp.nodePort), sel.clusterEndpoints);
        if (eLocal) endpointEls(endpointsMap('nodeport', true, proto), String(sp.nodePort), sel.localEndpoints);
        useChain('nodeport');
      }
    }
    hairpinElements();
    out.shared = [...shared.values()];
    if (usesFirewallChain) out.chains.push({ name: names().firewall, rules: [firewallRule(sp, cfg, ipX, sourceRanges)] });
    out.elements = lastWins(sp, sel.allReachableEndpoints, out.elements);
    return out;
  }

  // The chains. Endpoint chains are declared first, as upstream.
  const chains = new Map<string, ChainSpec>();
  const chainOf = (n: string): ChainSpec => {
    let c = chains.get(n);
    if (!c) chains.set(n, (c = { name: n, rules: [] }));
    return c;
  };
  // Shared layout: a session-affinity port keeps its per-service chains but no per-endpoint chain or set.
  const inline = sharedLayout(cfg);
  if (!inline) for (const ep of sel.allReachableEndpoints) chainOf(epInfo(ep).chain);
  if (usesClusterPolicyChain) chainOf(names().cluster);
  if (usesLocalPolicyChain) chainOf(names().local);
  if (usesExternalChain) chainOf(names().external);
  if (usesFirewallChain) chainOf(names().firewall);

  // Internal traffic: masquerade what comes from outside the cluster (it may have been routed here from elsewhere).
  if (hasInternalEndpoints) {
    if (cfg.masqueradeAll) chainOf(internalChain()).rules.push({ rule: `${ipX} daddr ${sp.clusterIP} jump ${MARK_MASQ_CHAIN}` });
    else if (podCIDR) chainOf(internalChain()).rules.push({ rule: `${ipX} daddr ${sp.clusterIP} ${ipX} saddr != ${podCIDR} jump ${MARK_MASQ_CHAIN}` });
  }

  // External traffic.
  if (usesExternalChain) {
    const ext = chainOf(names().external);
    if (!eLocal) {
      // The endpoint may be on another node: the reply must come back through this one.
      ext.rules.push({ rule: `jump ${MARK_MASQ_CHAIN}` });
    } else {
      // Pods reaching an external address are treated as if they went out to the load balancer and came
      // back (no traffic policy); so is the node itself, masqueraded since its source would be the LB IP.
      if (podCIDR) ext.rules.push({ rule: `${ipX} saddr ${podCIDR} goto ${names().cluster}`, comment: 'short-circuit pod traffic' });
      ext.rules.push({ rule: `fib saddr type local jump ${MARK_MASQ_CHAIN}`, comment: 'masquerade local traffic' });
      ext.rules.push({ rule: `fib saddr type local goto ${names().cluster}`, comment: 'short-circuit local traffic' });
    }
    if (hasExternalEndpoints) ext.rules.push({ rule: `goto ${externalPolicyChain()}` });
  }

  if (usesFirewallChain) chainOf(names().firewall).rules.push(firewallRule(sp, cfg, ipX, sourceRanges));

  if (inline) {
    // One affinity set for the port, keyed by client and endpoint (affinity.ts); endpoint rules inline.
    const aff = affinityPortSet(sp, v6);
    out.sets.push(aff);
    if (usesClusterPolicyChain) chainOf(names().cluster).rules.push(...inlineEndpointRules(aff.name, ipX, proto, sel.clusterEndpoints));
    if (usesLocalPolicyChain) chainOf(names().local).rules.push(...inlineEndpointRules(aff.name, ipX, proto, sel.localEndpoints));
    hairpinElements();
    out.chains = [...chains.values()];
    out.elements = lastWins(sp, sel.allReachableEndpoints, out.elements);
    return out;
  }

  if (sp.sessionAffinity === 'ClientIP') {
    for (const ep of sel.allReachableEndpoints) out.sets.push({ name: epInfo(ep).affinitySet, type: v6 ? 'ipv6_addr' : 'ipv4_addr', timeout: sp.sessionAffinityTimeoutSeconds });
  }

  if (usesClusterPolicyChain) chainOf(names().cluster).rules.push(...endpointRules(sp, ipX, sel.clusterEndpoints.map(epInfo)));
  if (usesLocalPolicyChain) chainOf(names().local).rules.push(...endpointRules(sp, ipX, sel.localEndpoints.map(epInfo)));

  for (const ep of sel.allReachableEndpoints) {
    const i = epInfo(ep);
    const rules = chainOf(i.chain).rules;
    // Hairpin: a pod reaching itself through the service must see the node as the source.
    rules.push({ rule: `${ipX} saddr ${ep.address} jump ${MARK_MASQ_CHAIN}` });
    if (sp.sessionAffinity === 'ClientIP') rules.push({ rule: `update @${i.affinitySet} { ${ipX} saddr }` });
    rules.push({ rule: `meta l4proto ${proto} dnat to ${endpointString(ep)}` });
  }

  out.chains = [...chains.values()];
  out.elements = lastWins(sp, sel.allReachableEndpoints, out.elements);
  return out;
}

/**
 * One element per key (an address listed twice, or an external IP equal to
 * the ClusterIP): the last wins, as upstream. Keys repeat only when an
 * address does, among the port's own addresses or its endpoints' (almost
 * never: then there is nothing to do, and no key text to make for each element).
 */
function lastWins(sp: ServicePort, eps: readonly Endpoint[], elements: ElementSpec[]): ElementSpec[] {
  const addresses = [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerIPs];
  const epAddresses = eps.map((e) => e.address);
  if (new Set(addresses).size === addresses.length && new Set(epAddresses).size === epAddresses.length) return elements;
  const byId = new Map<string, ElementSpec>();
  for (const e of elements) {
    const id = `${e.container} ${e.key.join(' . ')}`;
    byId.delete(id);
    byId.set(id, e);
  }
  return [...byId.values()];
}

/** The firewall chain's rule: drop sources outside loadBalancerSourceRanges. */
function firewallRule(sp: ServicePort, cfg: NftRenderConfig, ipX: string, sourceRanges: readonly ParsedCIDR[]): RuleSpec {
  const sources = new Set<string>();
  let allowFromNode = false;
  for (const c of sourceRanges) {
    sources.add(c.cidr);
    if (cfg.nodeIP !== undefined && cidrContains(c, cfg.nodeIP)) allowFromNode = true;
  }
  // A VIP-style load balancer IP is often also a local address of the node: a request from the
  // node to it then loops back with the LB IP as its source. Admit those when the node is admitted.
  if (allowFromNode) for (const ip of sp.loadBalancerIPs) sources.add(ip);
  return { rule: `${ipX} saddr != { ${[...sources].join(', ')} } drop` };
}

let lastCIDR: { text: string | undefined; cidr: string | undefined } = { text: undefined, cidr: undefined };

/** The pod CIDR, parsed and canonical (undefined when unset or not a CIDR: no local-traffic detection). */
function canonicalCIDR(text: string | undefined): string | undefined {
  if (text !== lastCIDR.text) lastCIDR = { text, cidr: text === undefined ? undefined : parseCIDR(text.trim())?.cidr };
  return lastCIDR.cidr;
}

/** A policy chain's endpoint rules: affinity checks first, then random load balancing over the endpoints. */
function endpointRules(sp: ServicePort, ipX: string, eps: EndpointInfo[]): RuleSpec[] {
  const rules: RuleSpec[] = [];
  if (sp.sessionAffinity === 'ClientIP') for (const e of eps) rules.push({ rule: `${ipX} saddr @${e.affinitySet} goto ${e.chain}` });
  const vmap = eps.map((e, i) => `${i} : goto ${e.chain}`).join(' , ');
  rules.push({ rule: `numgen random mod ${eps.length} vmap { ${vmap} }` });
  return rules;
}
