/**
 * Endpoint selection: which endpoints a packet may use, given the service's
 * traffic policies, the endpoints' conditions and topology hints. A pure
 * function, written once and used by every backend; it follows upstream's
 * CategorizeEndpoints (pkg/proxy/topology.go, Kubernetes 1.33+):
 *
 * - Cluster policy: ready endpoints, narrowed by topology when the hints are
 *   usable; when none is ready anywhere, serving-but-terminating endpoints
 *   (topology ignored).
 * - Local policy: this node's ready endpoints, else this node's
 *   serving-but-terminating ones (decided separately from Cluster).
 * - Topology: the hints alone decide, as upstream kube-proxy does since 1.33
 *   (the EndpointSlice controller writes hints only for services that ask for
 *   them through `trafficDistribution` or the topology annotation). Node hints
 *   are used when every ready endpoint has one and at least one names this
 *   node (PreferSameNode); else zone hints, when every ready endpoint has one
 *   and at least one names this node's zone (PreferSameZone); else no
 *   topology at all.
 */
import type { Endpoint, ServicePort } from './types.js';

export interface CategorizedEndpoints {
  /** Endpoints for traffic under the Cluster policy (internal or external), after topology. */
  clusterEndpoints: Endpoint[];
  /** Endpoints on this node, for traffic under a Local policy. */
  localEndpoints: Endpoint[];
  /** Union of the above: every endpoint some traffic from this node may reach. */
  allReachableEndpoints: Endpoint[];
  /** Whether the service has any usable endpoint anywhere in the cluster (decides REJECT vs DROP). */
  hasAnyEndpoints: boolean;
  /** The topology mode applied to clusterEndpoints. */
  topologyMode: TopologyMode;
}

/** '' means no topology: every ready endpoint. */
export type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

/** What this node is, for topology. */
export interface NodeTopology {
  /** This node's name (for node hints). */
  nodeName: string;
  /** This node's `topology.kubernetes.io/zone` ('' when unlabelled: zone hints are then never used). */
  zone: string;
  /** Honour node hints (upstream's PreferSameTrafficDistribution gate, on by default since 1.34). Default true. */
  sameNodeHints?: boolean;
}

const NO_TOPOLOGY: NodeTopology = { nodeName: '', zone: '' };

export function isExternallyAccessible(sp: ServicePort): boolean {
  return sp.nodePort !== 0 || sp.loadBalancerIPs.length > 0 || sp.externalIPs.length > 0;
}

/** internalTrafficPolicy is Local. */
export function internalPolicyLocal(sp: ServicePort): boolean {
  return sp.internalTrafficPolicy === 'Local';
}

/** externalTrafficPolicy is Local and there is external traffic at all. */
export function externalPolicyLocal(sp: ServicePort): boolean {
  return sp.externalTrafficPolicy === 'Local' && isExternallyAccessible(sp);
}

/**
 * Whether some traffic to this service uses the whole cluster's endpoints:
 * internal policy Cluster, or any external traffic at all (even with
 * externalTrafficPolicy Local, pods and the node itself reaching an external
 * address are short-circuited to the Cluster endpoints).
 */
export function usesClusterEndpoints(sp: ServicePort): boolean {
  return !internalPolicyLocal(sp) || isExternallyAccessible(sp);
}

/** Whether some traffic to this service uses only this node's endpoints. */
export function usesLocalEndpoints(sp: ServicePort): boolean {
  return internalPolicyLocal(sp) || externalPolicyLocal(sp);
}

function has(list: readonly string[] | undefined, name: string): boolean {
  return list !== undefined && list.includes(name);
}

/** Upstream's topologyModeFromHints: which hints (if any) narrow the Cluster endpoints on this node. */
export function topologyModeFromHints(endpoints: readonly Endpoint[], node: NodeTopology): TopologyMode {
  let hasEndpointForNode = false;
  let allHaveNodeHints = true;
  let hasEndpointForZone = false;
  let allHaveZoneHints = true;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if ((ep.nodeHints?.length ?? 0) === 0) allHaveNodeHints = false;
    else if (has(ep.nodeHints, node.nodeName)) hasEndpointForNode = true;
    if ((ep.zoneHints?.length ?? 0) === 0) allHaveZoneHints = false;
    else if (has(ep.zoneHints, node.zone)) hasEndpointForZone = true;
  }
  if ((node.sameNodeHints ?? true) && node.nodeName !== '' && allHaveNodeHints && hasEndpointForNode) return 'PreferSameNode';
  if (node.zone !== '' && allHaveZoneHints && hasEndpointForZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(ep: Endpoint, mode: TopologyMode, node: NodeTopology): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return has(ep.nodeHints, node.nodeName);
    case 'PreferSameZone':
      return has(ep.zoneHints, node.zone);
  }
}

const servingTerminating = (e: Endpoint): boolean => e.serving && e.terminating;

export function categorizeEndpoints(sp: ServicePort, node: NodeTopology = NO_TOPOLOGY): CategorizedEndpoints {
  const eps = sp.endpoints;
  let clusterEndpoints: Endpoint[] = [];
  let localEndpoints: Endpoint[] = [];
  let hasAnyEndpoints = false;
  let topologyMode: TopologyMode = '';
  let useServingTerminating = false;

  if (usesClusterEndpoints(sp)) {
    topologyMode = topologyModeFromHints(eps, node);
    clusterEndpoints = eps.filter((e) => e.ready && availableForTopology(e, topologyMode, node));
    // The topology mode was only chosen if it leaves a ready endpoint, so an empty
    // list here means nothing is ready anywhere: fall back to terminating endpoints,
    // without topology (a best effort not to drop connections).
    if (clusterEndpoints.length === 0) clusterEndpoints = eps.filter(servingTerminating);
    hasAnyEndpoints = clusterEndpoints.length > 0;
  }
  if (!usesLocalEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints, topologyMode };
  }

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const e of eps) {
    if (e.ready) {
      hasAnyEndpoints = true;
      if (e.isLocal) hasLocalReady = true;
    } else if (servingTerminating(e)) {
      hasAnyEndpoints = true;
      if (e.isLocal) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) {
    localEndpoints = eps.filter((e) => e.isLocal && e.ready);
  } else if (hasLocalServingTerminating) {
    useServingTerminating = true;
    localEndpoints = eps.filter((e) => e.isLocal && servingTerminating(e));
  }
  if (!usesClusterEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints, topologyMode };
  }
  if (topologyMode === '' && !useServingTerminating) {
    // clusterEndpoints holds every ready endpoint, so it already contains the local ones.
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints, topologyMode };
  }
  // Remote endpoints may be only in clusterEndpoints; terminating or topologically
  // excluded local ones only in localEndpoints: merge, keeping the model's order.
  const wanted = new Set([...clusterEndpoints, ...localEndpoints].map(endpointString));
  const allReachableEndpoints = eps.filter((e) => wanted.delete(endpointString(e)));
  return { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints, topologyMode };
}

/** `ip:port`, or `[ip]:port` for IPv6, as upstream prints endpoints. */
export function endpointString(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
