/**
 * Endpoint selection: which endpoints a packet may use, given the service's
 * traffic policies and the endpoints' conditions. A pure function, written
 * once and used by every backend; it follows upstream's CategorizeEndpoints.
 */
import type { Endpoint, ServicePort } from './types.js';

export interface CategorizedEndpoints {
  /** Endpoints for traffic under the Cluster policy (internal or external). */
  clusterEndpoints: Endpoint[];
  /** Endpoints on this node, for traffic under a Local policy. */
  localEndpoints: Endpoint[];
  /** Union of the above: every endpoint some traffic may reach. */
  allReachableEndpoints: Endpoint[];
  /** Whether the service has any usable endpoint anywhere (decides REJECT vs DROP). */
  hasAnyEndpoints: boolean;
}

export function isExternallyAccessible(sp: ServicePort): boolean {
  return sp.nodePort !== 0 || sp.loadBalancerIPs.length > 0 || sp.externalIPs.length > 0;
}

/** Whether some traffic to this service uses the whole cluster's endpoints. */
export function usesClusterEndpoints(sp: ServicePort): boolean {
  return sp.internalTrafficPolicy === 'Cluster' || (isExternallyAccessible(sp) && sp.externalTrafficPolicy === 'Cluster');
}

/** Whether some traffic to this service uses only this node's endpoints. */
export function usesLocalEndpoints(sp: ServicePort): boolean {
  return sp.internalTrafficPolicy === 'Local' || (isExternallyAccessible(sp) && sp.externalTrafficPolicy === 'Local');
}

/**
 * Ready endpoints are used; when none is ready, endpoints that are serving
 * but terminating are used instead (so a rolling update does not drop
 * connections that could still be served).
 */
function readyOrTerminatingFallback(eps: Endpoint[]): Endpoint[] {
  const ready = eps.filter((e) => e.ready);
  if (ready.length > 0) return ready;
  return eps.filter((e) => e.serving && e.terminating);
}

export function categorizeEndpoints(sp: ServicePort): CategorizedEndpoints {
  let clusterEndpoints: Endpoint[] = [];
  let localEndpoints: Endpoint[] = [];
  let hasAnyEndpoints = false;
  if (usesClusterEndpoints(sp)) {
    clusterEndpoints = readyOrTerminatingFallback(sp.endpoints);
    hasAnyEndpoints = clusterEndpoints.length > 0;
  }
  if (!usesLocalEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints, hasAnyEndpoints };
  }
  if (sp.endpoints.some((e) => e.ready)) hasAnyEndpoints = true;
  localEndpoints = readyOrTerminatingFallback(sp.endpoints.filter((e) => e.isLocal));
  if (localEndpoints.length > 0) hasAnyEndpoints = true;
  if (!usesClusterEndpoints(sp)) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints, hasAnyEndpoints };
  }
  const seen = new Set(clusterEndpoints.map(endpointString));
  const union = [...clusterEndpoints, ...localEndpoints.filter((e) => !seen.has(endpointString(e)))];
  return { clusterEndpoints, localEndpoints, allReachableEndpoints: union, hasAnyEndpoints };
}

/** `ip:port`, or `[ip]:port` for IPv6, as upstream prints endpoints. */
export function endpointString(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
