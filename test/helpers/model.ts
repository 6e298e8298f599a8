/** Builders for model objects in tests. */
import { ClusterStore } from '../../src/agent/model/store.js';
import type { Endpoint, EndpointSlice, IPFamily, Service, ServicePort, Snapshot } from '../../src/agent/model/types.js';

export function service(over: Partial<Service> & { name: string }): Service {
  return {
    namespace: 'ns',
    type: 'ClusterIP',
    clusterIPs: ['10.96.0.10'],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: 'None',
    sessionAffinityTimeoutSeconds: 10800,
    healthCheckNodePort: 0,
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 0, targetPort: 8080 }],
    ...over,
  };
}

export interface EpSpec {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  node?: string;
  zone?: string;
  /** hints.forZones */
  forZones?: string[];
  /** hints.forNodes */
  forNodes?: string[];
}

export function slice(svcName: string, eps: EpSpec[], over: Partial<EndpointSlice> = {}): EndpointSlice {
  return {
    namespace: 'ns',
    name: `${svcName}-a`,
    serviceName: svcName,
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: eps.map((e) => {
      const ready = e.ready ?? true;
      return {
        addresses: [e.ip],
        conditions: { ready, serving: e.serving ?? ready, terminating: e.terminating ?? false },
        nodeName: e.node ?? 'node-1',
        zone: e.zone ?? '',
        hints: { forZones: e.forZones ?? [], forNodes: e.forNodes ?? [] },
      };
    }),
    ...over,
  };
}

export function endpoint(ip: string, over: Partial<Endpoint> = {}): Endpoint {
  return { address: ip, port: 8080, ready: true, serving: true, terminating: false, nodeName: 'node-1', zone: '', isLocal: true, ...over };
}

/** A snapshot of services and slices, built through the real store (of one address family). */
export function snapshotOf(services: Service[], slices: EndpointSlice[], nodeName = 'node-1', family: IPFamily = 'IPv4'): Snapshot {
  const store = new ClusterStore(nodeName, family);
  for (const s of services) store.upsertService(s);
  for (const s of slices) store.upsertSlice(s);
  return store.snapshot().snapshot;
}

export function onlyPort(snap: Snapshot): ServicePort {
  const [sp] = [...snap.servicePorts.values()];
  if (!sp) throw new Error('no service port in snapshot');
  return sp;
}
