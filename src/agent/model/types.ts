/**
 * The internal model every backend shares. Sources convert API objects into
 * these types at the edge (after validation); nothing downstream ever sees a
 * raw API object.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IPFamily = 'IPv4' | 'IPv6';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type TrafficPolicy = 'Cluster' | 'Local';
/**
 * Service `spec.trafficDistribution`. The known values are PreferClose,
 * PreferSameZone and PreferSameNode; other strings are carried as given (a
 * newer API server may add values; kube-proxy itself does not interpret the
 * field, the EndpointSlice controller turns it into hints).
 */
export type TrafficDistribution = 'PreferClose' | 'PreferSameZone' | 'PreferSameNode' | (string & {});

/** The Node label that names the node's zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** `namespace/name`. */
export type ServiceName = string;

/** A validated v1 Service. */
export interface Service {
  namespace: string;
  name: string;
  type: ServiceType;
  /** Cluster IPs, normalised; empty for headless and ExternalName services. */
  clusterIPs: string[];
  headless: boolean;
  externalIPs: string[];
  loadBalancerIPs: string[];
  loadBalancerSourceRanges: string[];
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  sessionAffinity: 'None' | 'ClientIP';
  sessionAffinityTimeoutSeconds: number;
  healthCheckNodePort: number;
  ports: ServicePortSpec[];
  /** `spec.trafficDistribution`, '' or absent when not set. */
  trafficDistribution?: TrafficDistribution;
  /**
   * The topology annotation: `service.kubernetes.io/topology-aware-hints`
   * (deprecated, takes precedence as upstream) or else
   * `service.kubernetes.io/topology-mode`; '' or absent when neither is set.
   */
  topologyMode?: string;
}

export interface ServicePortSpec {
  /** Port name; '' for a single unnamed port. */
  name: string;
  protocol: Protocol;
  port: number;
  nodePort: number; // 0 when none
  /** targetPort as given (number or name); informational only, endpoints carry the real port. */
  targetPort: number | string;
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface SliceEndpoint {
  addresses: string[];
  conditions: EndpointConditions;
  nodeName: string;
  zone: string;
  hints: { forZones: string[]; forNodes: string[] };
}

export interface SlicePort {
  name: string;
  protocol: Protocol;
  port: number;
}

/** A validated discovery.k8s.io/v1 EndpointSlice. */
export interface EndpointSlice {
  namespace: string;
  name: string;
  /** From the kubernetes.io/service-name label. */
  serviceName: string;
  addressType: IPFamily;
  endpoints: SliceEndpoint[];
  ports: SlicePort[];
  /** endpoints.kubernetes.io/last-change-trigger-time, ms since epoch, if present. */
  triggerTime?: number;
}

/** A validated v1 Node (only the facts kube-proxy uses). */
export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  addresses: string[];
  podCIDRs: string[];
  /** The `topology.kubernetes.io/zone` label ('' or absent when unlabelled). */
  zone?: string;
}

/** One endpoint of one service port, after merging slices. */
export interface Endpoint {
  address: string;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName: string;
  zone: string;
  isLocal: boolean;
  /** EndpointSlice `hints.forZones[].name`: the zones this endpoint is hinted for (absent: none). */
  zoneHints?: string[];
  /** EndpointSlice `hints.forNodes[].name`: the nodes this endpoint is hinted for (absent: none). */
  nodeHints?: string[];
}

/**
 * One (service, port) pair: the unit every backend renders. Keyed
 * `namespace/name:portName/PROTOCOL` (see servicePortKey).
 */
export interface ServicePort {
  key: string;
  /** `namespace/name:portName` (or `namespace/name` for an unnamed port), as upstream prints it. */
  displayName: string;
  namespace: string;
  name: string;
  portName: string;
  protocol: Protocol;
  family: IPFamily;
  type: ServiceType;
  clusterIP: string;
  port: number;
  nodePort: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  loadBalancerSourceRanges: string[];
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  sessionAffinity: 'None' | 'ClientIP';
  sessionAffinityTimeoutSeconds: number;
  /** The health check NodePort: non-zero only for a LoadBalancer with externalTrafficPolicy Local (upstream NeedsHealthCheck). */
  healthCheckNodePort: number;
  /** The service's `spec.trafficDistribution` (informational: selection follows the endpoints' hints, as upstream). */
  trafficDistribution?: TrafficDistribution;
  /** The service's topology annotation (informational, as above). */
  topologyMode?: string;
  /** Every known endpoint of this port (ready or not), de-duplicated, sorted. */
  endpoints: Endpoint[];
}

/** An immutable view of the cluster handed to one sync. */
export interface Snapshot {
  nodeName: string;
  node?: NodeInfo;
  /** Service ports by key, for one address family. */
  servicePorts: ReadonlyMap<string, ServicePort>;
  /** Endpoints over all service ports (kept up to date by the store, so no sync has to count them). */
  endpointCount: number;
}

/** What changed since the last successful sync. */
export interface ChangeSet {
  /** Keys of service ports added, changed or removed. */
  servicePorts: ReadonlySet<string>;
  /** The node's own facts changed. */
  node: boolean;
  /** Trigger times (ms) of the EndpointSlice changes included, for network programming latency. */
  triggerTimes: readonly number[];
}

export type ChangeKind = 'Service' | 'EndpointSlice' | 'Node';

export function servicePortKey(namespace: string, name: string, portName: string, protocol: Protocol): string {
  return `${namespace}/${name}:${portName}/${protocol}`;
}

export function servicePortDisplayName(namespace: string, name: string, portName: string): string {
  return portName === '' ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}
