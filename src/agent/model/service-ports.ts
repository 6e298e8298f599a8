/**
 * Builds the service ports of one Service from the Service and its
 * EndpointSlices: slices are merged, endpoints de-duplicated, and each
 * service port gets the endpoints whose slice port matches it by name and
 * protocol.
 */
import ipaddr from 'ipaddr.js';
import { servicePortDisplayName, servicePortKey } from './types.js';
import type { Endpoint, EndpointSlice, IPFamily, Service, ServicePort } from './types.js';
import { parseCIDR } from '../util/addr.js';

export function buildServicePorts(
  svc: Service,
  slices: Iterable<EndpointSlice>,
  nodeName: string,
  family: IPFamily,
): ServicePort[] {
  if (svc.type === 'ExternalName' || svc.headless) return [];
  const clusterIP = svc.clusterIPs.find((ip) => familyOf(ip) === family);
  if (!clusterIP) return [];
  const familySlices = [...slices].filter((s) => s.addressType === family);
  const onlyFamily = (ips: string[]): string[] => ips.filter((ip) => familyOf(ip) === family);
  return svc.ports.map((p) => ({
    key: servicePortKey(svc.namespace, svc.name, p.name, p.protocol),
    displayName: servicePortDisplayName(svc.namespace, svc.name, p.name),
    namespace: svc.namespace,
    name: svc.name,
    portName: p.name,
    protocol: p.protocol,
    family,
    type: svc.type,
    clusterIP,
    port: p.port,
    nodePort: p.nodePort,
    externalIPs: onlyFamily(svc.externalIPs),
    loadBalancerIPs: onlyFamily(svc.loadBalancerIPs),
    loadBalancerSourceRanges: sourceRangesOf(svc.loadBalancerSourceRanges, family),
    externalTrafficPolicy: svc.externalTrafficPolicy,
    internalTrafficPolicy: svc.internalTrafficPolicy,
    sessionAffinity: svc.sessionAffinity,
    sessionAffinityTimeoutSeconds: svc.sessionAffinityTimeoutSeconds,
    // Upstream NeedsHealthCheck: only a LoadBalancer with externalTrafficPolicy Local has one.
    healthCheckNodePort: svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' ? svc.healthCheckNodePort : 0,
    ...(svc.trafficDistribution ? { trafficDistribution: svc.trafficDistribution } : {}),
    ...(svc.topologyMode ? { topologyMode: svc.topologyMode } : {}),
    endpoints: mergeEndpoints(familySlices, p.name, p.protocol, nodeName),
  }));
}

/**
 * As upstream's MapCIDRsByIPFamily: each range trimmed, and only the CIDRs of
 * this family kept (anything else, e.g. a typo, is ignored rather than
 * reaching a rule that the kernel tool would refuse, failing the whole sync).
 */
function sourceRangesOf(ranges: readonly string[], family: IPFamily): string[] {
  return ranges.map((r) => r.trim()).filter((r) => parseCIDR(r)?.family === family);
}

function familyOf(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

function mergeEndpoints(slices: EndpointSlice[], portName: string, protocol: string, nodeName: string): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const slice of slices) {
    const sp = slice.ports.find((p) => p.name === portName && p.protocol === protocol);
    if (!sp) continue;
    for (const e of slice.endpoints) {
      // Upstream uses only the first address of an endpoint.
      const address = e.addresses[0]!;
      const key = `${address}|${sp.port}`;
      const ep: Endpoint = {
        address,
        port: sp.port,
        ready: e.conditions.ready,
        serving: e.conditions.serving,
        terminating: e.conditions.terminating,
        nodeName: e.nodeName,
        zone: e.zone,
        isLocal: e.nodeName !== '' && e.nodeName === nodeName,
        ...(e.hints.forZones.length > 0 ? { zoneHints: [...e.hints.forZones] } : {}),
        ...(e.hints.forNodes.length > 0 ? { nodeHints: [...e.hints.forNodes] } : {}),
      };
      const prev = byKey.get(key);
      // The same endpoint in two slices (during a slice rebalance): prefer the ready copy.
      if (!prev || (!prev.ready && ep.ready)) byKey.set(key, ep);
    }
  }
  // Parse each address once, then sort on the parsed bytes.
  const keyed = [...byKey.values()].map((e) => ({ e, bytes: ipaddr.parse(e.address).toByteArray() }));
  keyed.sort(compareEndpoints);
  return keyed.map((k) => k.e);
}

function compareEndpoints(a: { e: Endpoint; bytes: number[] }, b: { e: Endpoint; bytes: number[] }): number {
  const x = a.bytes;
  const y = b.bytes;
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  if (x.length !== y.length) return x.length - y.length;
  return a.e.port - b.e.port;
}
