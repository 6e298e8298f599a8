/**
 * Names in the kube-proxy nftables table, as upstream's nftables proxier
 * (pkg/proxy/nftables) makes them, so `nft list table ip kube-proxy` reads
 * the same: per service port `service-`, `local-`, `external-` and
 * `firewall-` chains named `<prefix><HASH>-<ns>/<name>/<proto>/<port>`, per
 * endpoint `endpoint-<HASH>-<ns>/<name>/<proto>/<port>__<ip>/<port>` chains
 * and `affinity-…` sets, where HASH is the first 8 characters of the base32
 * of the SHA-256 of the rest, and names longer than 240 characters are cut
 * and end in `...`.
 *
 * Service ports without session affinity use this project's shared
 * load-balancing chains instead of per-service and per-endpoint chains:
 * `lb-internal-P-N`, `lb-external-P-N`, `lb-nodeport-P-N`,
 * `lb-external-local-P-C-L` and `lb-nodeport-local-P-C-L` (see lb-chains.ts).
 */
import { createHash } from 'node:crypto';
import type { ServicePort } from '../../agent/model/types.js';

export const TABLE = 'kube-proxy';

// Base chains.
export const FILTER_PREROUTING_PRE_DNAT = 'filter-prerouting-pre-dnat';
export const FILTER_OUTPUT_PRE_DNAT = 'filter-output-pre-dnat';
export const FILTER_INPUT = 'filter-input';
export const FILTER_FORWARD = 'filter-forward';
export const FILTER_OUTPUT = 'filter-output';
export const NAT_PREROUTING = 'nat-prerouting';
export const NAT_OUTPUT = 'nat-output';
export const NAT_POSTROUTING = 'nat-postrouting';

// Service dispatch.
export const SERVICES_CHAIN = 'services';
export const SERVICE_IPS_MAP = 'service-ips';
export const SERVICE_NODEPORTS_MAP = 'service-nodeports';
export const NODEPORT_IPS_SET = 'nodeport-ips';
export const CLUSTER_IPS_SET = 'cluster-ips';

// Services without endpoints.
export const SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const NO_ENDPOINT_SERVICES_MAP = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS_MAP = 'no-endpoint-nodeports';
export const REJECT_CHAIN = 'reject-chain';

// Unallocated ClusterIPs and undefined ports of ClusterIPs.
export const CLUSTER_IPS_CHECK = 'cluster-ips-check';

// loadBalancerSourceRanges.
export const FIREWALL_IPS_MAP = 'firewall-ips';
export const FIREWALL_CHECK = 'firewall-check';

// Masquerading.
export const MARK_MASQ_CHAIN = 'mark-for-masquerade';
export const MASQUERADING_CHAIN = 'masquerading';

// Shared load balancing (this project's layout for service ports without session affinity; see lb-chains.ts).
export const HAIRPIN_SET = 'hairpin-endpoints';
export const LB_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

/** The DNAT map of one protocol's endpoints: `service-endpoints-tcp`, `nodeport-local-endpoints-udp`, ... */
export function endpointsMap(kind: 'service' | 'nodeport', local: boolean, proto: string): string {
  return `${kind}${local ? '-local' : ''}-endpoints-${proto}`;
}

/** knftables.NameLengthMax minus the longest prefix: the longest name base. */
const NAME_BASE_MAX = 256 - 16;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding, padding left out: only a prefix is used). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Upstream's hashAndTruncate: `HASH8-name`, cut to 240 characters with a trailing `...`. */
export function hashAndTruncate(name: string): string {
  const hash = base32(createHash('sha256').update(name).digest()).slice(0, 8);
  const out = `${hash}-${name}`;
  return out.length > NAME_BASE_MAX ? `${out.slice(0, NAME_BASE_MAX - 3)}...` : out;
}

/** `ns/name/proto/portName`, hashed: the base of a service port's chain names. */
export function servicePortNameBase(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>): string {
  return hashAndTruncate(`${sp.namespace}/${sp.name}/${sp.protocol.toLowerCase()}/${sp.portName}`);
}

/** `ns/name/proto/portName__ip/port` (an IPv6 address with `.` for `:`), hashed. */
export function endpointNameBase(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>, address: string, port: number): string {
  const ip = address.includes(':') ? address.replaceAll(':', '.') : address;
  return hashAndTruncate(`${sp.namespace}/${sp.name}/${sp.protocol.toLowerCase()}/${sp.portName}__${ip}/${port}`);
}

export interface ServicePortChainNames {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function servicePortChains(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>): ServicePortChainNames {
  const base = servicePortNameBase(sp);
  return { cluster: `service-${base}`, local: `local-${base}`, external: `external-${base}`, firewall: `firewall-${base}` };
}

export function endpointChain(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>, address: string, port: number): string {
  return `endpoint-${endpointNameBase(sp, address, port)}`;
}

export function affinitySet(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>, address: string, port: number): string {
  return `affinity-${endpointNameBase(sp, address, port)}`;
}

/** Per-service chains always contain a `/`; the fixed chains never do (upstream's isServiceChainName). */
export const isServiceChainName = (name: string): boolean => name.includes('/');

export const isAffinitySetName = (name: string): boolean => name.startsWith('affinity-');
