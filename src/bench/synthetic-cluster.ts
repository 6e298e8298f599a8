/**
 * A realistic synthetic cluster for the bench, deterministic from a seed:
 * Services (ClusterIP, NodePort, LoadBalancer; one or two ports, some UDP)
 * and their EndpointSlices, endpoints spread over many nodes (a few on this
 * node), plus the changes the bench applies (an endpoint replaced by a new
 * pod, one more service).
 *
 * The mix (per service):
 * - type: 82% ClusterIP, 12% NodePort, 6% LoadBalancer. NodePorts come from
 *   30000-32767 and are never reused; when that range is used up (beyond
 *   ~10,000 services) further services are ClusterIP, as an API server
 *   would refuse them. LoadBalancers get one IP from 100.64.0.0/10;
 *   30% of them (10% of NodePorts) have externalTrafficPolicy Local.
 * - ports (see PROFILES): two thirds one TCP port, a third two ports; about
 *   12% of services have a UDP port (DNS, syslog, statsd).
 * - 5% sessionAffinity ClientIP, 2% internalTrafficPolicy Local, 1% of
 *   ClusterIP services an external IP.
 * - endpoints: exactly M per service, in slices of at most 100 (the
 *   EndpointSlice controller's default), on nodes picked uniformly among
 *   ceil(total endpoints / 60) nodes (at least 3, at most 5,000): about 60
 *   pods per node, so this node holds a share of them. 97% ready, 2% not
 *   ready, 1% terminating (still serving). Three zones.
 *
 * Addresses: ClusterIPs at random (unique) in 10.96.0.0/12, pod IPs in
 * 10.128.0.0/9 (the bench's cluster CIDR), LoadBalancer IPs in 100.64.0.0/10,
 * external IPs in 198.18.0.0/15.
 */
import { NO_HINTS, sharedConditions, sharedName } from '../agent/model/shared.js';
import type { EndpointSlice, NodeInfo, Protocol, Service, ServicePortSpec, ServiceType, SliceEndpoint } from '../agent/model/types.js';
import { ZONE_LABEL } from '../agent/model/types.js';
import { seededRandom } from './random.js';
import type { Rand } from './random.js';

export const BENCH_CLUSTER_CIDR = '10.128.0.0/9';
export const BENCH_NODE_NAME = 'node-0000';
const MAX_ENDPOINTS_PER_SLICE = 100;
const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;

export interface SyntheticSpec {
  services: number;
  endpointsPerService: number;
  seed: number;
}

interface PortTemplate {
  name: string;
  protocol: Protocol;
  port: number;
  targetPort: number;
}

/** Port profiles and their weights (percent of services). */
export const PROFILES: readonly (readonly [readonly PortTemplate[], number])[] = [
  [[{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }], 35],
  [[{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }, { name: 'https', protocol: 'TCP', port: 443, targetPort: 8443 }], 20],
  [[{ name: 'grpc', protocol: 'TCP', port: 9090, targetPort: 9090 }], 15],
  [[{ name: 'postgres', protocol: 'TCP', port: 5432, targetPort: 5432 }], 10],
  [[{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }, { name: 'metrics', protocol: 'TCP', port: 9100, targetPort: 9100 }], 8],
  [[{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 53 }], 5],
  [[{ name: 'syslog', protocol: 'UDP', port: 514, targetPort: 514 }], 4],
  [[{ name: 'statsd', protocol: 'UDP', port: 8125, targetPort: 8125 }], 3],
];

export const TYPE_WEIGHTS: readonly (readonly [ServiceType, number])[] = [
  ['ClusterIP', 82],
  ['NodePort', 12],
  ['LoadBalancer', 6],
];

export interface GeneratedService {
  service: Service;
  slices: EndpointSlice[];
}

function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const base = (a: number, b: number, c: number, d: number): number => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
const CLUSTER_IP_BASE = base(10, 96, 0, 0);
const CLUSTER_IP_SIZE = 1 << 20; // /12
const POD_IP_BASE = base(10, 128, 0, 0);
const POD_IP_SIZE = 1 << 23; // /9
const LB_IP_BASE = base(100, 64, 0, 0);
const EXTERNAL_IP_BASE = base(198, 18, 0, 0);

export class SyntheticCluster {
  readonly node: NodeInfo;
  /** Every node name; the first is this node. */
  readonly nodes: string[];
  private readonly rand: Rand;
  private readonly usedClusterIPs = new Set<number>();
  private readonly usedNodePorts = new Set<number>();
  private nextNodePort = NODE_PORT_MIN;
  private nextPodIP = 1;
  private nextLbIP = 1;
  private nextExternalIP = 1;
  private nextService = 0;
  private readonly namespaces: number;

  constructor(readonly spec: SyntheticSpec) {
    if (!Number.isInteger(spec.services) || spec.services < 0) throw new Error('services must be a whole number ≥ 0');
    if (!Number.isInteger(spec.endpointsPerService) || spec.endpointsPerService < 0) throw new Error('endpoints per service must be a whole number ≥ 0');
    this.rand = seededRandom(spec.seed);
    const nodeCount = Math.min(5000, Math.max(3, Math.ceil((spec.services * spec.endpointsPerService) / 60)));
    this.nodes = Array.from({ length: nodeCount }, (_, i) => `node-${String(i).padStart(4, '0')}`);
    this.namespaces = Math.max(1, Math.ceil(spec.services / 40));
    this.node = {
      name: BENCH_NODE_NAME,
      labels: { [ZONE_LABEL]: 'zone-0', 'kubernetes.io/hostname': BENCH_NODE_NAME },
      addresses: ['172.18.0.10'],
      podCIDRs: ['10.128.0.0/24'],
      zone: 'zone-0',
    };
  }

  /** The initial N services with their slices. */
  initial(): GeneratedService[] {
    const out: GeneratedService[] = [];
    for (let i = 0; i < this.spec.services; i++) out.push(this.newService());
    return out;
  }

  /** One more service (and its slices), from the same distribution. */
  newService(): GeneratedService {
    const r = this.rand;
    const index = this.nextService++;
    const namespace = `team-${String(index % this.namespaces).padStart(3, '0')}`;
    const name = `svc-${String(index).padStart(6, '0')}`;
    const templates = r.weighted(PROFILES);
    let type = r.weighted(TYPE_WEIGHTS);
    const etpLocal = (type === 'LoadBalancer' && r.chance(0.3)) || (type === 'NodePort' && r.chance(0.1));
    const needPorts = type === 'ClusterIP' ? 0 : templates.length + (type === 'LoadBalancer' && etpLocal ? 1 : 0);
    if (needPorts > NODE_PORT_MAX - NODE_PORT_MIN + 1 - this.usedNodePorts.size) type = 'ClusterIP';
    const ports: ServicePortSpec[] = templates.map((t) => ({
      name: templates.length === 1 && r.chance(0.3) ? '' : t.name,
      protocol: t.protocol,
      port: t.port,
      nodePort: type === 'ClusterIP' ? 0 : this.allocNodePort(),
      targetPort: t.targetPort,
    }));
    const service: Service = {
      namespace,
      name,
      type,
      clusterIPs: [this.allocClusterIP()],
      headless: false,
      externalIPs: type === 'ClusterIP' && r.chance(0.01) ? [ipv4(EXTERNAL_IP_BASE + this.nextExternalIP++)] : [],
      loadBalancerIPs: type === 'LoadBalancer' ? [ipv4(LB_IP_BASE + this.nextLbIP++)] : [],
      loadBalancerSourceRanges: [],
      externalTrafficPolicy: type !== 'ClusterIP' && etpLocal ? 'Local' : 'Cluster',
      internalTrafficPolicy: r.chance(0.02) ? 'Local' : 'Cluster',
      sessionAffinity: r.chance(0.05) ? 'ClientIP' : 'None',
      sessionAffinityTimeoutSeconds: 10800,
      healthCheckNodePort: type === 'LoadBalancer' && etpLocal ? this.allocNodePort() : 0,
      ports,
    };
    const endpoints = Array.from({ length: this.spec.endpointsPerService }, () => this.newEndpoint());
    const slicePorts = templates.map((t, i) => ({ name: ports[i]!.name, protocol: t.protocol, port: t.targetPort }));
    const slices: EndpointSlice[] = [];
    for (let i = 0; i === 0 || i * MAX_ENDPOINTS_PER_SLICE < endpoints.length; i++) {
      slices.push({
        namespace,
        name: `${name}-${sliceSuffix(index, i)}`,
        serviceName: name,
        addressType: 'IPv4',
        endpoints: endpoints.slice(i * MAX_ENDPOINTS_PER_SLICE, (i + 1) * MAX_ENDPOINTS_PER_SLICE),
        ports: slicePorts,
      });
    }
    return { service, slices };
  }

  /**
   * The slice with one endpoint replaced by a new, ready pod (new address,
   * maybe another node), as when a pod is rescheduled and has become ready:
   * the change that must reach the rules (a not-ready pod replaced by
   * another not-ready one would change nothing). A slice without endpoints
   * gets one.
   */
  replaceEndpoint(slice: EndpointSlice): EndpointSlice {
    const endpoints = [...slice.endpoints];
    if (endpoints.length === 0) endpoints.push(this.newEndpoint('ready'));
    else endpoints[this.rand.int(endpoints.length)] = this.newEndpoint('ready');
    return { ...slice, endpoints };
  }

  /** A seeded pick, for the bench's choice of which service to change. */
  pickIndex(n: number): number {
    return this.rand.int(n);
  }

  private newEndpoint(forced?: 'ready'): SliceEndpoint {
    const r = this.rand;
    const nodeIndex = r.int(this.nodes.length);
    const state = forced ?? r.weighted([
      ['ready', 97],
      ['notReady', 2],
      ['terminating', 1],
    ] as const);
    if (this.nextPodIP >= POD_IP_SIZE) throw new Error('synthetic cluster: pod IPs used up');
    return {
      addresses: [ipv4(POD_IP_BASE + this.nextPodIP++)],
      conditions: sharedConditions(state === 'ready', state !== 'notReady', state === 'terminating'),
      nodeName: this.nodes[nodeIndex]!,
      zone: sharedName(`zone-${nodeIndex % 3}`),
      hints: NO_HINTS,
    };
  }

  private allocClusterIP(): string {
    if (this.usedClusterIPs.size >= CLUSTER_IP_SIZE - 16) throw new Error('synthetic cluster: ClusterIPs used up');
    for (;;) {
      const n = 10 + this.rand.int(CLUSTER_IP_SIZE - 11);
      if (this.usedClusterIPs.has(n)) continue;
      this.usedClusterIPs.add(n);
      return ipv4(CLUSTER_IP_BASE + n);
    }
  }

  private allocNodePort(): number {
    while (this.usedNodePorts.has(this.nextNodePort)) this.nextNodePort++;
    if (this.nextNodePort > NODE_PORT_MAX) throw new Error('synthetic cluster: NodePorts used up');
    this.usedNodePorts.add(this.nextNodePort);
    return this.nextNodePort;
  }
}

function sliceSuffix(serviceIndex: number, i: number): string {
  return `${(serviceIndex * 7919 + i * 104729).toString(36).slice(-5).padStart(5, 'x')}`;
}

/** Counts that describe a generated cluster (printed with the results). */
export interface ClusterSummary {
  services: number;
  byType: Record<'ClusterIP' | 'NodePort' | 'LoadBalancer', number>;
  servicePorts: number;
  udpServicePorts: number;
  endpoints: number;
  localEndpoints: number;
  nodes: number;
  slices: number;
}

export function summarize(generated: readonly GeneratedService[], nodes: number, nodeName: string): ClusterSummary {
  const s: ClusterSummary = { services: generated.length, byType: { ClusterIP: 0, NodePort: 0, LoadBalancer: 0 }, servicePorts: 0, udpServicePorts: 0, endpoints: 0, localEndpoints: 0, nodes, slices: 0 };
  for (const g of generated) {
    if (g.service.type !== 'ExternalName') s.byType[g.service.type]++;
    s.servicePorts += g.service.ports.length;
    s.udpServicePorts += g.service.ports.filter((p) => p.protocol === 'UDP').length;
    s.slices += g.slices.length;
    for (const sl of g.slices) {
      s.endpoints += sl.endpoints.length;
      s.localEndpoints += sl.endpoints.filter((e) => e.nodeName === nodeName).length;
    }
  }
  return s;
}
