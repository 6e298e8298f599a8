/**
 * The packet-flow behaviour table, independent of the proxy mode: clusters
 * (services, EndpointSlices, configuration), packets, and where each packet
 * must go (endpoints with probabilities, verdict, masquerade).
 *
 * test/unit/packet-flow-iptables.test.ts renders every scenario with the
 * iptables renderer and traces the packets with the iptables tracer;
 * test/unit/packet-flow-nftables.test.ts renders the same scenarios with the
 * nftables backend and traces them with the nftables tracer. Both check the
 * same expectations.
 *
 * A case carries a per-mode expectation (`modes`) only where upstream
 * kube-proxy's iptables and nftables modes really behave differently; each
 * says why, and the mode's test fails when such an override is not needed
 * any more (checkCase in packet-flow-check.ts).
 */
import type { IPFamily, EndpointSlice, Service, ServicePort } from '../../src/agent/model/types.js';
import type { TracePacket } from '../../src/trace/iptables/trace.js';
import { service, slice } from './model.js';

export type Mode = 'iptables' | 'nftables';

export interface Expectation {
  verdict: 'ACCEPT' | 'REJECT' | 'DROP';
  /** endpoint `ip:port` (IPv6 bare, no brackets) → probability; omitted: no DNAT at all. */
  endpoints?: Record<string, number>;
  /** Omitted: not checked. */
  masquerade?: 'always' | 'never' | 'some';
}

export interface ModeExpectation extends Expectation {
  /** Why upstream's modes differ here. */
  why: string;
}

export interface FlowCase extends Expectation {
  what: string;
  packet: TracePacket;
  /** This host's addresses; default the scenario's. */
  localAddresses?: string[];
  /** Hairpin: masquerade happens exactly on the paths DNATed back to this address (the sender). */
  hairpin?: string;
  /**
   * A known bug of this project's renderer in that mode (upstream does what
   * the case expects): the case runs as a tap todo there, and says so.
   */
  todo?: Partial<Record<Mode, string>>;
  /** Where upstream's modes differ: what this mode does instead. */
  modes?: Partial<Record<Mode, ModeExpectation>>;
}

/** Mode-independent configuration; each mode maps it to its own render config. */
export interface FlowConfig {
  family?: IPFamily;
  clusterCIDR?: string;
  masqueradeAll?: boolean;
  nodeName?: string;
  nodeZone?: string;
  nodeIP?: string;
  nodePortAddresses?: string[];
  /** iptables only (nftables mode never serves NodePorts on loopback, as upstream). */
  localhostNodePorts?: boolean;
  /** iptables only (leaves out comments; no change in behaviour). */
  largeClusterMode?: boolean;
  /** The cluster's ServiceCIDRs: nftables drops traffic to unallocated ClusterIPs in them. */
  serviceCIDRs?: string[];
  /**
   * A host firewall outside kube-proxy's rules drops whatever reaches these
   * hooks unless accepted (iptables: `-P INPUT DROP` / `-P FORWARD DROP` in
   * filter; nftables: a table of its own with base chains of policy drop).
   */
  hostDrop?: ('input' | 'forward')[];
}

export interface Scenario {
  name: string;
  services: Service[];
  slices: EndpointSlice[];
  family?: IPFamily;
  nodeName?: string;
  config: FlowConfig;
  /** This host's addresses (default: [NODE_IP]). */
  localAddresses?: string[];
  cases: FlowCase[];
}

export const NODE_IP = '203.0.113.1';
export const NODE_IP2 = '192.0.2.1';
export const CLIENT = '203.0.113.2';
export const OUTSIDER = '198.18.0.5';
export const POD_A = '10.244.1.2';
export const POD_B = '10.244.1.3';
export const OTHER_POD = '10.244.1.9';
export const REMOTE_1 = '10.244.2.2';
export const REMOTE_2 = '10.244.3.2';
export const CIDR = '10.244.0.0/16';
export const SERVICE_CIDRS = ['10.96.0.0/16', 'fd00:10:96::/112'];

type Proto = TracePacket['proto'];
type PortProto = ServicePort['protocol'];

const port = (name: string, protocol: PortProto, p: number, nodePort = 0, targetPort = 8080) => ({ name, protocol, port: p, nodePort, targetPort });
const tcp = (name: string, p: number, nodePort = 0, target = 8080) => port(name, 'TCP', p, nodePort, target);

export const fromNode = (dst: string, dport: number, proto: Proto = 'tcp', src = NODE_IP): TracePacket => ({ origin: 'local', src, dst, dport, proto });
export const from = (src: string, dst: string, dport: number, proto: Proto = 'tcp'): TracePacket => ({ origin: 'forward', src, dst, dport, proto });
const lo = (dport: number): TracePacket => ({ origin: 'local', src: '127.0.0.1', dst: '127.0.0.1', dport, proto: 'tcp' });

/** A case iptables mode leaves untouched (accepted, no DNAT) and nftables mode rejects or drops, for `why`. */
const nftStops = (what: string, packet: TracePacket, verdict: 'REJECT' | 'DROP', why: string): FlowCase => ({ what, packet, verdict: 'ACCEPT', modes: { nftables: { verdict, why } } });

const WEB = { [`${POD_A}:8080`]: 0.5, [`${POD_B}:8080`]: 0.5 };
const onlyA = { [`${POD_A}:8080`]: 1 };
const aAndRemote = { [`${POD_A}:8080`]: 0.5, [`${REMOTE_1}:8080`]: 0.5 };
const onlyRemote = { [`${REMOTE_1}:8080`]: 1 };
const third = Math.round(1000 / 3) / 1000;

// Why upstream's modes differ.
const WHY_PORT_CHECK = 'upstream nftables mode rejects traffic to a ClusterIP on a port (or protocol) no service port uses (cluster-ips-check); iptables mode has no such rule';
const WHY_UNALLOCATED = 'upstream nftables mode drops traffic to unallocated addresses of the ServiceCIDRs (cluster-ips-check); iptables mode has no such rule';
const WHY_NO_LOCALHOST = 'upstream nftables mode never serves NodePorts on loopback addresses (no route_localnet), so it needs no guard either: what the kernel does with a martian 127.0.0.1 from the network is not kube-proxy\'s rules';
const WHY_NODEPORT_REJECT = 'upstream nftables mode rejects (or drops) NodePorts without (local) endpoints only on the NodePort addresses (@nodeport-ips); iptables mode does it on every local address (KUBE-EXTERNAL-SERVICES matches --dst-type LOCAL)';
const WHY_NODE_EXTERNAL_REJECT = 'upstream iptables mode rejects external and LoadBalancer IPs without endpoints in KUBE-EXTERNAL-SERVICES, jumped to from INPUT and FORWARD only, so the node\'s own connections are not rejected; nftables mode checks @no-endpoint-services in filter-output too';
const WHY_FIREWALL_NO_ENDPOINTS = 'upstream iptables mode uses the firewall chain only when the service has endpoints (usesFWChain needs hasEndpoints), so everyone is rejected; nftables mode fills firewall-ips regardless, and its firewall-check runs before the no-endpoint check';
const WHY_FORWARD_ACCEPT = 'upstream iptables mode accepts forwarded packets marked for masquerade in KUBE-FORWARD (so a FORWARD policy of DROP does not stop them); nftables mode has no such rule, and an accept in its table could not override another table\'s drop anyway';
const WHY_HEALTH_CHECK = 'upstream nftables mode writes no accept rule for health check node ports (an accept in its table could not override another table\'s drop anyway); iptables mode accepts them in filter INPUT';

// ---------------------------------------------------------------------------
// Services of every kind: ClusterIP, NodePort, LoadBalancer, external IPs,
// UDP, SCTP, several ports, no endpoints, only terminating endpoints.
// ---------------------------------------------------------------------------

const basicServices: Service[] = [
  service({ name: 'web', type: 'LoadBalancer', clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['198.51.100.10'], externalIPs: ['192.0.2.50'], ports: [tcp('http', 80, 30080)] }),
  service({ name: 'dns', type: 'NodePort', clusterIPs: ['10.96.0.53'], ports: [port('dns', 'UDP', 53, 30053, 5353)] }),
  service({ name: 'empty', type: 'NodePort', clusterIPs: ['10.96.0.20'], ports: [tcp('http', 80, 30020)] }),
  service({ name: 'empty-lb', type: 'LoadBalancer', clusterIPs: ['10.96.0.21'], loadBalancerIPs: ['198.51.100.21'], externalIPs: ['192.0.2.21'], ports: [tcp('http', 80, 30021)] }),
  service({ name: 'docs', type: 'ExternalName', clusterIPs: [] }),
  service({ name: 'headless', headless: true, clusterIPs: [] }),
  service({ name: 'sctp', type: 'NodePort', clusterIPs: ['10.96.0.30'], ports: [port('x', 'SCTP', 9, 30009, 9)] }),
  service({ name: 'rolling', clusterIPs: ['10.96.0.40'] }),
  service({ name: 'mixed', clusterIPs: ['10.96.0.60'], ports: [port('dns-udp', 'UDP', 53, 0, 5353), port('dns-tcp', 'TCP', 53, 0, 5354)] }),
  service({ name: 'empty-udp', type: 'NodePort', clusterIPs: ['10.96.0.22'], ports: [port('dns', 'UDP', 53, 30022, 53)] }),
  service({ name: 'multi', type: 'NodePort', clusterIPs: ['10.96.0.50'], ports: [tcp('http', 80, 30500, 8080), tcp('https', 443, 30501, 8443)] }),
];

const basicSlices: EndpointSlice[] = [
  slice('web', [{ ip: POD_A }, { ip: POD_B }]),
  slice('dns', [{ ip: POD_A }, { ip: POD_B }], { ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
  slice('headless', [{ ip: POD_A }]),
  slice('sctp', [{ ip: '10.244.1.4' }], { ports: [{ name: 'x', protocol: 'SCTP', port: 9 }] }),
  slice('rolling', [
    { ip: '10.244.1.5', ready: false, serving: true, terminating: true },
    { ip: '10.244.1.6', ready: false, serving: false, terminating: true },
  ]),
  slice('mixed', [{ ip: POD_A }], { ports: [{ name: 'dns-udp', protocol: 'UDP', port: 5353 }, { name: 'dns-tcp', protocol: 'TCP', port: 5354 }] }),
  slice('multi', [{ ip: POD_A }, { ip: REMOTE_1, node: 'node-2' }], { ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'https', protocol: 'TCP', port: 8443 }] }),
];

const DNS = { [`${POD_A}:5353`]: 0.5, [`${POD_B}:5353`]: 0.5 };

const basicCases: FlowCase[] = [
  { what: 'ClusterIP from the node', packet: fromNode('10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'ClusterIP from a pod', packet: from(OTHER_POD, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'ClusterIP from outside the cluster (routed to the node)', packet: from(CLIENT, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'a pod reaching itself through its service (hairpin)', packet: from(POD_B, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'some', hairpin: POD_B },
  nftStops('ClusterIP, a port no service port uses', from(OTHER_POD, '10.96.0.10', 81), 'REJECT', WHY_PORT_CHECK),
  nftStops('ClusterIP from the node, a port no service port uses', fromNode('10.96.0.10', 81), 'REJECT', WHY_PORT_CHECK),
  { what: 'NodePort from outside', packet: from(CLIENT, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'NodePort from a pod', packet: from(OTHER_POD, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'NodePort from the node itself', packet: fromNode(NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'LoadBalancer IP from outside', packet: from(CLIENT, '198.51.100.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'LoadBalancer IP from a pod', packet: from(OTHER_POD, '198.51.100.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'LoadBalancer IP from the node', packet: fromNode('198.51.100.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'LoadBalancer IP, another port: not touched', packet: from(CLIENT, '198.51.100.10', 81), verdict: 'ACCEPT' },
  { what: 'external IP from outside', packet: from(CLIENT, '192.0.2.50', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'external IP from the node', packet: fromNode('192.0.2.50', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'UDP ClusterIP from a pod', packet: from(OTHER_POD, '10.96.0.53', 53, 'udp'), endpoints: DNS, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'UDP NodePort from outside', packet: from(CLIENT, NODE_IP, 30053, 'udp'), endpoints: DNS, verdict: 'ACCEPT', masquerade: 'always' },
  nftStops('TCP to a UDP-only service port', from(OTHER_POD, '10.96.0.53', 53, 'tcp'), 'REJECT', WHY_PORT_CHECK),
  { what: 'TCP to a UDP-only NodePort is not touched', packet: from(CLIENT, NODE_IP, 30053, 'tcp'), verdict: 'ACCEPT' },
  { what: 'one port number, two protocols: UDP', packet: from(OTHER_POD, '10.96.0.60', 53, 'udp'), endpoints: { [`${POD_A}:5353`]: 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'one port number, two protocols: TCP', packet: from(OTHER_POD, '10.96.0.60', 53, 'tcp'), endpoints: { [`${POD_A}:5354`]: 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'SCTP ClusterIP', packet: from(OTHER_POD, '10.96.0.30', 9, 'sctp'), endpoints: { '10.244.1.4:9': 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'SCTP NodePort', packet: from(CLIENT, NODE_IP, 30009, 'sctp'), endpoints: { '10.244.1.4:9': 1 }, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'two ports of one service: the first', packet: from(OTHER_POD, '10.96.0.50', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'two ports of one service: the second goes to its own target port', packet: from(OTHER_POD, '10.96.0.50', 443), endpoints: { [`${POD_A}:8443`]: 0.5, [`${REMOTE_1}:8443`]: 0.5 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'two ports of one service: the second NodePort', packet: from(CLIENT, NODE_IP, 30501), endpoints: { [`${POD_A}:8443`]: 0.5, [`${REMOTE_1}:8443`]: 0.5 }, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'no endpoints: ClusterIP from a pod is rejected', packet: from(OTHER_POD, '10.96.0.20', 80), verdict: 'REJECT' },
  { what: 'no endpoints: ClusterIP from the node is rejected', packet: fromNode('10.96.0.20', 80), verdict: 'REJECT' },
  { what: 'no endpoints: NodePort from outside is rejected', packet: from(CLIENT, NODE_IP, 30020), verdict: 'REJECT' },
  { what: 'no endpoints: NodePort from the node is rejected', packet: fromNode(NODE_IP, 30020), verdict: 'REJECT' },
  { what: 'no endpoints: NodePort from a pod is rejected', packet: from(OTHER_POD, NODE_IP, 30020), verdict: 'REJECT' },
  { what: 'no endpoints: UDP ClusterIP is rejected', packet: from(OTHER_POD, '10.96.0.22', 53, 'udp'), verdict: 'REJECT' },
  { what: 'no endpoints: UDP NodePort is rejected', packet: from(CLIENT, NODE_IP, 30022, 'udp'), verdict: 'REJECT' },
  { what: 'no endpoints: LoadBalancer IP from a pod is rejected', packet: from(OTHER_POD, '198.51.100.21', 80), verdict: 'REJECT' },
  { what: 'no endpoints: LoadBalancer IP from outside is rejected', packet: from(CLIENT, '198.51.100.21', 80), verdict: 'REJECT' },
  { what: 'no endpoints: external IP from outside is rejected', packet: from(CLIENT, '192.0.2.21', 80), verdict: 'REJECT' },
  nftStops('no endpoints: external IP from the node', fromNode('192.0.2.21', 80), 'REJECT', WHY_NODE_EXTERNAL_REJECT),
  nftStops('no endpoints: LoadBalancer IP from the node', fromNode('198.51.100.21', 80), 'REJECT', WHY_NODE_EXTERNAL_REJECT),
  { what: 'only terminating endpoints: the serving one is used', packet: from(OTHER_POD, '10.96.0.40', 80), endpoints: { '10.244.1.5:8080': 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'a port that is no NodePort', packet: from(CLIENT, NODE_IP, 30081), verdict: 'ACCEPT' },
  nftStops('an unallocated address in the ServiceCIDR, from a pod', from(OTHER_POD, '10.96.0.99', 80), 'DROP', WHY_UNALLOCATED),
  nftStops('an unallocated address in the ServiceCIDR, from the node', fromNode('10.96.0.99', 80), 'DROP', WHY_UNALLOCATED),
  { what: 'an address outside the ServiceCIDRs is not touched', packet: from(OTHER_POD, '10.97.0.1', 80), verdict: 'ACCEPT' },
  { what: 'traffic between pods is not touched', packet: from(OTHER_POD, POD_A, 8080), endpoints: {}, verdict: 'ACCEPT', masquerade: 'never' },
];

// ---------------------------------------------------------------------------
// Features: session affinity, traffic policies, topology, source ranges,
// NodePort addresses, localhost NodePorts, health check node ports.
// ---------------------------------------------------------------------------

const featureServices: Service[] = [
  service({ name: 'sticky', clusterIPs: ['10.96.1.1'], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 600 }),
  service({ name: 'local-ext', type: 'LoadBalancer', clusterIPs: ['10.96.2.1'], loadBalancerIPs: ['198.51.100.20'], externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [tcp('http', 80, 30200)] }),
  service({
    name: 'local-none',
    type: 'LoadBalancer',
    clusterIPs: ['10.96.3.1'],
    loadBalancerIPs: ['198.51.100.30'],
    externalIPs: ['192.0.2.60'],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32001,
    ports: [tcp('http', 80, 30300)],
  }),
  service({ name: 'itp-local', clusterIPs: ['10.96.4.1'], internalTrafficPolicy: 'Local' }),
  service({ name: 'itp-none', clusterIPs: ['10.96.5.1'], internalTrafficPolicy: 'Local' }),
  service({ name: 'itp-none-np', type: 'NodePort', clusterIPs: ['10.96.5.2'], internalTrafficPolicy: 'Local', ports: [tcp('http', 80, 30502)] }),
  service({ name: 'zoned', clusterIPs: ['10.96.6.1'] }),
  service({ name: 'half-hinted', clusterIPs: ['10.96.6.2'] }),
  service({ name: 'node-hinted', clusterIPs: ['10.96.6.3'] }),
  service({ name: 'ranged', type: 'LoadBalancer', clusterIPs: ['10.96.7.1'], loadBalancerIPs: ['198.51.100.40'], loadBalancerSourceRanges: ['203.0.113.0/25'], ports: [tcp('http', 80, 30700)] }),
  service({ name: 'ranged-empty', type: 'LoadBalancer', clusterIPs: ['10.96.7.2'], loadBalancerIPs: ['198.51.100.41'], loadBalancerSourceRanges: ['203.0.113.0/25'], ports: [tcp('http', 80, 30701)] }),
  // As the API server stores them: a range with blanks around it (validation trims before parsing), and one with host bits set.
  service({ name: 'ranged-sloppy', type: 'LoadBalancer', clusterIPs: ['10.96.7.3'], loadBalancerIPs: ['198.51.100.42'], loadBalancerSourceRanges: [' 203.0.113.0/25 ', '192.0.2.77/24'], ports: [tcp('http', 80, 30702)] }),
  service({ name: 'np', type: 'NodePort', clusterIPs: ['10.96.8.1'], ports: [tcp('http', 80, 30800)] }),
  service({ name: 'np-empty', type: 'NodePort', clusterIPs: ['10.96.8.2'], ports: [tcp('http', 80, 30801)] }),
];

const featureSlices: EndpointSlice[] = [
  slice('sticky', [{ ip: POD_A }, { ip: POD_B }]),
  slice('local-ext', [{ ip: POD_A }, { ip: REMOTE_1, node: 'node-2' }]),
  slice('local-none', [{ ip: REMOTE_1, node: 'node-2' }]),
  slice('itp-local', [{ ip: POD_A }, { ip: REMOTE_1, node: 'node-2' }]),
  slice('itp-none', [{ ip: REMOTE_1, node: 'node-2' }]),
  slice('itp-none-np', [{ ip: REMOTE_1, node: 'node-2' }]),
  slice('zoned', [
    { ip: POD_A, zone: 'zone-a', forZones: ['zone-a'] },
    { ip: REMOTE_1, node: 'node-2', zone: 'zone-a', forZones: ['zone-a'] },
    { ip: REMOTE_2, node: 'node-3', zone: 'zone-b', forZones: ['zone-b'] },
  ]),
  slice('half-hinted', [
    { ip: POD_A, zone: 'zone-a', forZones: ['zone-a'] },
    { ip: REMOTE_2, node: 'node-3', zone: 'zone-b' },
  ]),
  slice('node-hinted', [
    { ip: POD_A, forNodes: ['node-1'], forZones: ['zone-a'] },
    { ip: REMOTE_1, node: 'node-2', forNodes: ['node-2'], forZones: ['zone-a'] },
  ]),
  slice('ranged', [{ ip: POD_A }, { ip: POD_B }]),
  slice('ranged-sloppy', [{ ip: POD_A }, { ip: POD_B }]),
  slice('np', [{ ip: POD_A }]),
];

const FEATURES_CFG: FlowConfig = { clusterCIDR: CIDR, nodeName: 'node-1', nodeZone: 'zone-a', nodeIP: NODE_IP };

const featureCases: FlowCase[] = [
  // Session affinity: without a recorded source, the first packet is spread as usual.
  { what: 'affinity: the first packet is load balanced', packet: from(OTHER_POD, '10.96.1.1', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'affinity: the first packet from the node too, masqueraded', packet: fromNode('10.96.1.1', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  // externalTrafficPolicy=Local.
  { what: 'eTP Local: NodePort from outside reaches only the local endpoint, source kept', packet: from(CLIENT, NODE_IP, 30200), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: LoadBalancer IP from outside reaches only the local endpoint, source kept', packet: from(CLIENT, '198.51.100.20', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: a pod reaching the LB IP is short-circuited to every endpoint', packet: from(OTHER_POD, '198.51.100.20', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: a pod reaching the NodePort is short-circuited to every endpoint', packet: from(OTHER_POD, NODE_IP, 30200), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: the node reaching its NodePort goes to every endpoint, masqueraded', packet: fromNode(NODE_IP, 30200), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local: the node reaching the LB IP goes to every endpoint, masqueraded', packet: fromNode('198.51.100.20', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local: the ClusterIP still uses every endpoint', packet: from(OTHER_POD, '10.96.2.1', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local, no local endpoint: NodePort from outside is dropped', packet: from(CLIENT, NODE_IP, 30300), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: LB IP from outside is dropped', packet: from(CLIENT, '198.51.100.30', 80), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: external IP from outside is dropped', packet: from(CLIENT, '192.0.2.60', 80), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: a pod reaching the LB IP still gets the remote endpoint', packet: from(OTHER_POD, '198.51.100.30', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local, no local endpoint: a pod reaching the external IP still gets the remote endpoint', packet: from(OTHER_POD, '192.0.2.60', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local, no local endpoint: the node reaching its NodePort gets the remote endpoint, masqueraded', packet: fromNode(NODE_IP, 30300), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local, no local endpoint: the node reaching the LB IP gets the remote endpoint, masqueraded', packet: fromNode('198.51.100.30', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local, no local endpoint: the ClusterIP works',  packet: from(OTHER_POD, '10.96.3.1', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'never' },
  // internalTrafficPolicy=Local.
  { what: 'iTP Local: a pod reaches only the local endpoint', packet: from(OTHER_POD, '10.96.4.1', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'iTP Local: the node reaches only the local endpoint, masqueraded', packet: fromNode('10.96.4.1', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'iTP Local, no local endpoint: dropped (not rejected)', packet: from(OTHER_POD, '10.96.5.1', 80), verdict: 'DROP' },
  { what: 'iTP Local, no local endpoint: dropped from the node too', packet: fromNode('10.96.5.1', 80), verdict: 'DROP' },
  { what: 'iTP Local, no local endpoint: the NodePort (Cluster policy) still works', packet: from(CLIENT, NODE_IP, 30502), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'always' },
  // Topology.
  { what: 'zone hints: only endpoints hinted for this zone', packet: from(OTHER_POD, '10.96.6.1', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'zone hints missing on one endpoint: every endpoint', packet: from(OTHER_POD, '10.96.6.2', 80), endpoints: { [`${POD_A}:8080`]: 0.5, [`${REMOTE_2}:8080`]: 0.5 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'node hints beat zone hints: only the endpoint hinted for this node', packet: from(OTHER_POD, '10.96.6.3', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  // loadBalancerSourceRanges.
  { what: 'source ranges: an allowed client reaches the endpoints', packet: from(CLIENT, '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges: any other client is dropped', packet: from(OUTSIDER, '198.51.100.40', 80), verdict: 'DROP' },
  { what: 'source ranges: a pod outside the ranges is dropped too', packet: from(OTHER_POD, '198.51.100.40', 80), verdict: 'DROP' },
  { what: 'source ranges: the node, loopback-routed with the LB IP as source, is admitted (range holds the node IP)', packet: from('198.51.100.40', '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges do not apply to the NodePort', packet: from(OUTSIDER, NODE_IP, 30700), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges do not apply to the ClusterIP', packet: from(OTHER_POD, '10.96.7.1', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'source ranges, no endpoints: an allowed client is rejected', packet: from(CLIENT, '198.51.100.41', 80), verdict: 'REJECT' },
  {
    what: 'source ranges, no endpoints: any other client',
    packet: from(OUTSIDER, '198.51.100.41', 80),
    verdict: 'REJECT',
    modes: { nftables: { verdict: 'DROP', why: WHY_FIREWALL_NO_ENDPOINTS } },
  },
  { what: 'source ranges with blanks: an allowed client reaches the endpoints', packet: from(CLIENT, '198.51.100.42', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges with host bits: the whole network is allowed', packet: from('192.0.2.200', '198.51.100.42', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges with blanks: any other client is dropped', packet: from(OUTSIDER, '198.51.100.42', 80), verdict: 'DROP' },
  {
    what: 'source ranges with blanks: the LB IP as source is admitted (range holds the node IP)',
    packet: from('198.51.100.42', '198.51.100.42', 80),
    endpoints: WEB,
    verdict: 'ACCEPT',
    masquerade: 'always',
  },
  // NodePorts.
  { what: 'NodePort on every local address: the first', packet: from(CLIENT, NODE_IP, 30800), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'always', localAddresses: [NODE_IP, NODE_IP2] },
  { what: 'NodePort on every local address: the second', packet: from(CLIENT, NODE_IP2, 30800), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'always', localAddresses: [NODE_IP, NODE_IP2] },
  { what: 'NodePort on an address that is not local: not touched', packet: from(CLIENT, NODE_IP2, 30800), verdict: 'ACCEPT' },
  { what: 'no endpoints: NodePort on the second local address is rejected', packet: from(CLIENT, NODE_IP2, 30801), verdict: 'REJECT', localAddresses: [NODE_IP, NODE_IP2] },
  // The network reaching the node's loopback (guarded in iptables mode, where localhost NodePorts exist).
  {
    what: 'localhost NodePort from the node',
    packet: lo(30800),
    endpoints: onlyA,
    verdict: 'ACCEPT',
    masquerade: 'always',
    modes: { nftables: { verdict: 'ACCEPT', why: WHY_NO_LOCALHOST } },
  },
  {
    what: 'the network reaching 127.0.0.1',
    packet: from(CLIENT, '127.0.0.1', 10248),
    verdict: 'DROP',
    modes: { nftables: { verdict: 'ACCEPT', why: WHY_NO_LOCALHOST } },
  },
  { what: 'the node reaching its own loopback is not touched', packet: lo(10248), verdict: 'ACCEPT' },
];

const ZONE_CASE = { what: 'zone hints', packet: from(OTHER_POD, '10.96.6.1', 80), verdict: 'ACCEPT', masquerade: 'never' } as const;
const all3 = { [`${POD_A}:8080`]: third, [`${REMOTE_1}:8080`]: third, [`${REMOTE_2}:8080`]: third };

const features = (name: string, config: FlowConfig, cases: FlowCase[], localAddresses?: string[]): Scenario => ({
  name,
  services: featureServices,
  slices: featureSlices,
  config: { ...FEATURES_CFG, ...config },
  cases,
  ...(localAddresses ? { localAddresses } : {}),
});

const npCase = (what: string, packet: TracePacket, e: Omit<FlowCase, 'what' | 'packet'>): FlowCase => ({ what, packet, ...e });
const np = onlyA;

// ---------------------------------------------------------------------------
// IPv6.
// ---------------------------------------------------------------------------

const V6_NODE = '2001:db8::1';
const V6_CLIENT = '2001:db8::2';
const V6_POD = 'fd00:10:244:1::9';
const V6_A = 'fd00:10:244:1::2';
const V6_REMOTE = 'fd00:10:244:2::2';
const v6Both = { [`${V6_A}:8080`]: 0.5, [`${V6_REMOTE}:8080`]: 0.5 };
const v6Local = { [`${V6_A}:8080`]: 1 };
const v6Slice = (name: string, eps: { ip: string; node?: string }[]) => slice(name, eps, { addressType: 'IPv6' });

const v6: Scenario = {
  name: 'IPv6',
  family: 'IPv6',
  services: [
    service({ name: 'web6', type: 'LoadBalancer', clusterIPs: ['fd00:10:96::10'], loadBalancerIPs: ['2001:db8:1::10'], loadBalancerSourceRanges: ['2001:db8::/64'], externalIPs: ['2001:db8:2::10'], ports: [tcp('http', 80, 30080)] }),
    service({ name: 'local6', type: 'NodePort', clusterIPs: ['fd00:10:96::20'], externalTrafficPolicy: 'Local', ports: [tcp('http', 80, 30090)] }),
    service({ name: 'empty6', type: 'NodePort', clusterIPs: ['fd00:10:96::30'], ports: [tcp('http', 80, 30095)] }),
    service({ name: 'dns6', clusterIPs: ['fd00:10:96::53'], ports: [port('dns', 'UDP', 53, 0, 5353)] }),
    service({ name: 'sticky6', clusterIPs: ['fd00:10:96::40'], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60 }),
  ],
  slices: [
    v6Slice('web6', [{ ip: V6_A }, { ip: V6_REMOTE, node: 'node-2' }]),
    v6Slice('local6', [{ ip: V6_A }, { ip: V6_REMOTE, node: 'node-2' }]),
    slice('dns6', [{ ip: V6_A }], { addressType: 'IPv6', ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
    v6Slice('sticky6', [{ ip: V6_A }, { ip: V6_REMOTE, node: 'node-2' }]),
  ],
  config: { family: 'IPv6', clusterCIDR: 'fd00:10:244::/48', nodeName: 'node-1', nodeIP: V6_NODE, serviceCIDRs: SERVICE_CIDRS },
  localAddresses: [V6_NODE],
  cases: [
    { what: 'ClusterIP from a pod', packet: from(V6_POD, 'fd00:10:96::10', 80), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'ClusterIP from the node', packet: fromNode('fd00:10:96::10', 80, 'tcp', V6_NODE), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'hairpin', packet: from(V6_A, 'fd00:10:96::10', 80), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'some', hairpin: V6_A },
    { what: 'UDP ClusterIP', packet: from(V6_POD, 'fd00:10:96::53', 53, 'udp'), endpoints: { [`${V6_A}:5353`]: 1 }, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'session affinity: the first packet is load balanced', packet: from(V6_POD, 'fd00:10:96::40', 80), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'NodePort from outside', packet: from(V6_CLIENT, V6_NODE, 30080), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'external IP from outside', packet: from(V6_CLIENT, '2001:db8:2::10', 80), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'LB IP from an allowed client', packet: from(V6_CLIENT, '2001:db8:1::10', 80), endpoints: v6Both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'LB IP from another client', packet: from('2001:db8:9::1', '2001:db8:1::10', 80), verdict: 'DROP' },
    { what: 'eTP Local NodePort from outside', packet: from(V6_CLIENT, V6_NODE, 30090), endpoints: v6Local, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'no endpoints: ClusterIP rejected', packet: from(V6_POD, 'fd00:10:96::30', 80), verdict: 'REJECT' },
    { what: 'no endpoints: NodePort rejected', packet: from(V6_CLIENT, V6_NODE, 30095), verdict: 'REJECT' },
    nftStops('ClusterIP, a port no service port uses', from(V6_POD, 'fd00:10:96::10', 81), 'REJECT', WHY_PORT_CHECK),
    nftStops('an unallocated address in the ServiceCIDR', from(V6_POD, 'fd00:10:96::99', 80), 'DROP', WHY_UNALLOCATED),
    { what: '[::1]:NodePort is never a NodePort', packet: { origin: 'local', src: '::1', dst: '::1', dport: 30080, proto: 'tcp' }, verdict: 'ACCEPT' },
  ],
};

// ---------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------

export const SCENARIOS: Scenario[] = [
  { name: 'with --cluster-cidr', services: basicServices, slices: basicSlices, config: { clusterCIDR: CIDR, serviceCIDRs: SERVICE_CIDRS }, cases: basicCases },
  {
    name: 'with --masquerade-all every ClusterIP connection is masqueraded',
    services: basicServices,
    slices: basicSlices,
    config: { masqueradeAll: true },
    cases: [
      { what: 'pod', packet: from(OTHER_POD, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
      { what: 'UDP from a pod', packet: from(OTHER_POD, '10.96.0.53', 53, 'udp'), endpoints: DNS, verdict: 'ACCEPT', masquerade: 'always' },
      { what: 'NodePort', packet: from(CLIENT, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
    ],
  },
  {
    name: 'without a cluster CIDR, ClusterIP traffic is not masqueraded (as upstream)',
    services: basicServices,
    slices: basicSlices,
    config: {},
    cases: [
      { what: 'node', packet: fromNode('10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
      { what: 'hairpin is still masqueraded', packet: from(POD_B, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'some', hairpin: POD_B },
      { what: 'outside via NodePort still masqueraded', packet: from(CLIENT, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
      { what: 'no ServiceCIDRs: an unallocated ClusterIP is not touched', packet: from(OTHER_POD, '10.96.0.99', 80), verdict: 'ACCEPT' },
    ],
  },
  features('features', {}, featureCases),
  features('features, no cluster CIDR: eTP Local has no pod short-circuit', { clusterCIDR: undefined }, [
    { what: 'a pod reaching the LB IP gets only the local endpoint', packet: from(OTHER_POD, '198.51.100.20', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'the node is still short-circuited and masqueraded', packet: fromNode(NODE_IP, 30200), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'always' },
  ]),
  features('zone hints with no hint for this node\'s zone', { nodeZone: 'zone-c' }, [{ ...ZONE_CASE, endpoints: all3 }]),
  features('zone hints on an unlabelled node', { nodeZone: '' }, [{ ...ZONE_CASE, endpoints: all3 }]),
  features('zone hints for zone-b', { nodeZone: 'zone-b' }, [{ ...ZONE_CASE, endpoints: { [`${REMOTE_2}:8080`]: 1 } }]),
  features('node hints for other nodes only: zone hints apply', { nodeName: 'node-9' }, [
    { what: 'node-hinted', packet: from(OTHER_POD, '10.96.6.3', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  ]),
  features('source ranges that do not hold the node IP', { nodeIP: NODE_IP2 }, [
    { what: 'the LB IP as source is refused', packet: from('198.51.100.40', '198.51.100.40', 80), verdict: 'DROP' },
    { what: 'an allowed client', packet: from(CLIENT, '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  ]),
  features('nodePortAddresses: only the listed node IPs are NodePorts', { nodePortAddresses: [NODE_IP] }, [
    npCase('listed IP', from(CLIENT, NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
    npCase('unlisted IP', from(CLIENT, NODE_IP2, 30800), { verdict: 'ACCEPT' }),
    npCase('the node, listed IP', fromNode(NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
    npCase('the node, unlisted IP', fromNode(NODE_IP2, 30800), { verdict: 'ACCEPT' }),
    npCase('no endpoints, listed IP', from(CLIENT, NODE_IP, 30801), { verdict: 'REJECT' }),
    npCase('no endpoints, unlisted IP', from(CLIENT, NODE_IP2, 30801), {
      verdict: 'REJECT',
      modes: { nftables: { verdict: 'ACCEPT', why: WHY_NODEPORT_REJECT } },
    }),
    npCase('eTP Local without local endpoints, unlisted IP', from(CLIENT, NODE_IP2, 30300), {
      verdict: 'DROP',
      modes: { nftables: { verdict: 'ACCEPT', why: WHY_NODEPORT_REJECT } },
    }),
    npCase('eTP Local without local endpoints, listed IP', from(CLIENT, NODE_IP, 30300), { verdict: 'DROP' }),
    npCase('not on loopback', lo(30800), { verdict: 'ACCEPT' }),
    npCase('no loopback NodePort address: no guard either', from(CLIENT, '127.0.0.1', 10248), { verdict: 'ACCEPT' }),
  ], [NODE_IP, NODE_IP2]),
  features('nodePortAddresses matching no address: no NodePorts at all', { nodePortAddresses: [] }, [
    npCase('first IP', from(CLIENT, NODE_IP, 30800), { verdict: 'ACCEPT' }),
    npCase('the node', fromNode(NODE_IP, 30800), { verdict: 'ACCEPT' }),
    npCase('the ClusterIP still works', from(OTHER_POD, '10.96.8.1', 80), { endpoints: np, verdict: 'ACCEPT', masquerade: 'never' }),
  ], [NODE_IP, NODE_IP2]),
  features('nodePortAddresses listing loopback', { nodePortAddresses: [NODE_IP, '127.0.0.1'] }, [
    npCase('listed loopback', lo(30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always', modes: { nftables: { verdict: 'ACCEPT', why: WHY_NO_LOCALHOST } } }),
    npCase('listed IP', from(CLIENT, NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
    npCase('the network reaching 127.0.0.1', from(CLIENT, '127.0.0.1', 10248), { verdict: 'DROP', modes: { nftables: { verdict: 'ACCEPT', why: WHY_NO_LOCALHOST } } }),
  ]),
  features('localhost NodePorts off', { localhostNodePorts: false }, [
    npCase('127.0.0.1:NodePort is no NodePort', lo(30800), { verdict: 'ACCEPT' }),
    npCase('the node IP still is', fromNode(NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
    npCase('no guard', from(CLIENT, '127.0.0.1', 10248), { verdict: 'ACCEPT' }),
  ]),
  features('nodePortAddresses listing loopback, localhost NodePorts off', { nodePortAddresses: [NODE_IP, '127.0.0.1'], localhostNodePorts: false }, [
    npCase('listed loopback', lo(30800), { verdict: 'ACCEPT' }),
  ]),
  features('health check node ports, behind a host firewall dropping INPUT', { hostDrop: ['input'] }, [
    npCase('health check node port, local endpoints', from(CLIENT, NODE_IP, 32000), { verdict: 'ACCEPT', modes: { nftables: { verdict: 'DROP', why: WHY_HEALTH_CHECK } } }),
    npCase('health check node port, no local endpoints', from(CLIENT, NODE_IP, 32001), { verdict: 'ACCEPT', modes: { nftables: { verdict: 'DROP', why: WHY_HEALTH_CHECK } } }),
    npCase('another port', from(CLIENT, NODE_IP, 32002), { verdict: 'DROP' }),
    npCase('a NodePort DNATed to a pod on this node is forwarded, not input', from(CLIENT, NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
  ]),
  features('with --masquerade-all, external traffic keeps its policy', { masqueradeAll: true }, [
    { what: 'eTP Local: LB IP from outside keeps the source', packet: from(CLIENT, '198.51.100.20', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'eTP Local: the ClusterIP from a pod is masqueraded', packet: from(OTHER_POD, '10.96.2.1', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'iTP Local: a pod is masqueraded', packet: from(OTHER_POD, '10.96.4.1', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'eTP Local: a pod reaching the LB IP is short-circuited, not masqueraded', packet: from(OTHER_POD, '198.51.100.20', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  ]),
  features('behind a host firewall dropping FORWARD', { hostDrop: ['forward'] }, [
    npCase('NodePort from outside, masqueraded', from(CLIENT, NODE_IP, 30800), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always', modes: { nftables: { verdict: 'DROP', why: WHY_FORWARD_ACCEPT } } }),
    npCase('ClusterIP from a pod, not masqueraded', from(OTHER_POD, '10.96.8.1', 80), { verdict: 'DROP' }),
    npCase('ClusterIP from the node is not forwarded', fromNode('10.96.8.1', 80), { endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }),
  ]),
  features('large-cluster mode: the same behaviour', { largeClusterMode: true }, featureCases.filter((c) => c.modes === undefined)),
  v6,
];

/** The expectation of `c` in `mode`. */
export function expectationFor(c: FlowCase, mode: Mode): Expectation {
  return c.modes?.[mode] ?? c;
}

/** Endpoint `ip:port` → probability (rounded to 3 places) of a trace result. */
export function endpointMap(endpoints: readonly { address: string; port: number; probability: number }[]): Record<string, number> {
  const got: Record<string, number> = {};
  for (const e of endpoints) got[`${e.address}:${e.port}`] = Math.round(e.probability * 1000) / 1000;
  return got;
}
