/**
 * The nftables backend's configuration, mirroring the iptables one, and the
 * per-sync effective configuration (what the snapshot says about this node).
 */
import { resolveNodePortAddresses } from '../../agent/model/node-port-addresses.js';
import type { IPFamily, Snapshot } from '../../agent/model/types.js';
import { ZONE_LABEL } from '../../agent/model/types.js';
import { cidrContains, parseCIDR } from '../../agent/util/addr.js';
import type { Family } from './nft/objects.js';
import type { RenderConfig as IptablesRenderConfig } from '../iptables/render.js';

export interface NftRenderConfig {
  /** The address family of this table (`ip kube-proxy` or `ip6 kube-proxy`); default IPv4. */
  family?: IPFamily;
  /** Pod CIDR (of this family): traffic to a ClusterIP from outside it is masqueraded; pod traffic to external IPs is short-circuited. */
  clusterCIDR?: string;
  /** Masquerade all traffic to ClusterIPs. */
  masqueradeAll: boolean;
  /** The masquerade mark bit (0-31), 14 by default as upstream (0x4000). */
  masqueradeBit: number;
  /** This node's name, for EndpointSlice node hints (PreferSameNode). */
  nodeName?: string;
  /** This node's `topology.kubernetes.io/zone` label, for zone hints; unset: zone hints unused. */
  nodeZone?: string;
  /** This node's primary IP of this family: a loadBalancerSourceRanges entry containing it also admits the LB IPs as sources (upstream allowFromNode). */
  nodeIP?: string;
  /** The node IPs (this family) NodePorts are accepted on; unset: every local address (`fib daddr type local`). */
  nodePortAddresses?: readonly string[];
  /** --nodeport-addresses as given and this host's addresses, resolved into nodePortAddresses at each sync (not used by the renderer). */
  nodePortSpec?: { spec: readonly string[]; localAddresses: readonly string[] };
  /** The cluster's ServiceCIDRs (any family; only this family's are used): traffic to an unallocated ClusterIP in them is dropped. */
  serviceCIDRs?: readonly string[];
  /**
   * 'shared' (default): ports without session affinity load-balance through the shared
   * chains and maps of lb-chains.ts. 'upstream': every port gets upstream's per-service
   * and per-endpoint chains, and the table is upstream's object for object.
   */
  layout?: 'shared' | 'upstream';
}

export const sharedLayout = (cfg: Pick<NftRenderConfig, 'layout'>): boolean => (cfg.layout ?? 'shared') === 'shared';

export const DEFAULT_NFT_CONFIG: NftRenderConfig = { masqueradeAll: false, masqueradeBit: 14 };

export const nftFamily = (cfg: Pick<NftRenderConfig, 'family'>): Family => ((cfg.family ?? 'IPv4') === 'IPv6' ? 'ip6' : 'ip');

/** `0x4000` for bit 14. */
export function markHex(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16)}`;
}

/** This family's ServiceCIDRs, canonical, without those inside another one. */
export function familyServiceCIDRs(cfg: NftRenderConfig): string[] {
  const family = cfg.family ?? 'IPv4';
  const parsed = (cfg.serviceCIDRs ?? []).map((c) => parseCIDR(c.trim())).filter((c) => c !== undefined && c.family === family);
  const out: string[] = [];
  for (const c of parsed.sort((a, b) => a!.prefix - b!.prefix)) {
    const inside = out.some((o) => {
      const p = parseCIDR(o)!;
      return p.prefix <= c!.prefix && cidrContains(p, c!.cidr.split('/')[0]!);
    });
    if (!inside) out.push(c!.cidr);
  }
  return out.sort();
}

/**
 * The render configuration for one sync: the static one plus what the
 * snapshot says about this node (zone, primary IP) and the resolved
 * --nodeport-addresses. When it differs from the last sync's the sync is
 * full (as upstream does when the node's topology labels change).
 */
export function effectiveConfig(base: NftRenderConfig, snapshot: Snapshot): NftRenderConfig {
  const family = base.family ?? 'IPv4';
  const zone = snapshot.node?.labels[ZONE_LABEL];
  const nodeIP = snapshot.node?.addresses.find((a) => a.includes(':') === (family === 'IPv6'));
  let nodePortAddresses: readonly string[] | undefined;
  if (base.nodePortSpec && base.nodePortSpec.spec.length > 0) {
    const primary: Partial<Record<IPFamily, string>> = {};
    for (const a of snapshot.node?.addresses ?? []) primary[a.includes(':') ? 'IPv6' : 'IPv4'] ??= a;
    nodePortAddresses = resolveNodePortAddresses(base.nodePortSpec.spec, family, base.nodePortSpec.localAddresses, primary);
  }
  return {
    ...base,
    ...(nodePortAddresses !== undefined ? { nodePortAddresses } : {}),
    ...(zone !== undefined && base.nodeZone === undefined ? { nodeZone: zone } : {}),
    ...(nodeIP !== undefined && base.nodeIP === undefined ? { nodeIP } : {}),
  };
}

export function sameConfig(a: NftRenderConfig, b: NftRenderConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The nftables config from the iptables backend's RenderConfig (what the
 * agent's renderConfigFor builds), plus the cluster's ServiceCIDRs. The
 * iptables-only fields (randomFully: nftables always masquerades
 * fully-random; localhostNodePorts: nftables mode never serves NodePorts on
 * 127.0.0.1, as upstream; largeClusterMode) are dropped.
 */
export function nftConfigFrom(
  ipt: Pick<IptablesRenderConfig, 'family' | 'clusterCIDR' | 'masqueradeAll' | 'masqueradeBit' | 'nodeName' | 'nodeZone' | 'nodeIP' | 'nodePortAddresses' | 'nodePortSpec'>,
  serviceCIDRs?: readonly string[],
): NftRenderConfig {
  const out: NftRenderConfig = { masqueradeAll: ipt.masqueradeAll, masqueradeBit: ipt.masqueradeBit };
  if (ipt.family !== undefined) out.family = ipt.family;
  if (ipt.clusterCIDR !== undefined) out.clusterCIDR = ipt.clusterCIDR;
  if (ipt.nodeName !== undefined) out.nodeName = ipt.nodeName;
  if (ipt.nodeZone !== undefined) out.nodeZone = ipt.nodeZone;
  if (ipt.nodeIP !== undefined) out.nodeIP = ipt.nodeIP;
  if (ipt.nodePortAddresses !== undefined) out.nodePortAddresses = ipt.nodePortAddresses;
  if (ipt.nodePortSpec !== undefined) out.nodePortSpec = ipt.nodePortSpec;
  if (serviceCIDRs !== undefined) out.serviceCIDRs = serviceCIDRs;
  return out;
}
