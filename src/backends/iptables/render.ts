/**
 * The pure iptables renderer: snapshot in, iptables-restore text out. No I/O.
 * The layout follows upstream kube-proxy's iptables mode so that
 * `iptables-save` reads like upstream's.
 */
import type { IPFamily, Snapshot } from '../../agent/model/types.js';
import { SHARED_CHAINS } from './layout.js';
import { jumpKey } from './names.js';
import type { JumpRule } from './names.js';
import { renderServicePort } from './render-service.js';
import type { RenderedServicePort } from './render-service.js';
import { RestoreInputBuilder } from './restore-input.js';
import type { BuiltInput } from './restore-input.js';
import { comment } from './rule-text.js';

export { comment, markHex, probability } from './rule-text.js';

export interface RenderConfig {
  /** Pod CIDR of the cluster: traffic to a ClusterIP from outside it is masqueraded. */
  clusterCIDR?: string;
  /** Masquerade all traffic to ClusterIPs. */
  masqueradeAll: boolean;
  /** The masquerade mark bit (0-31), 14 by default as upstream (0x4000). */
  masqueradeBit: number;
  /** MASQUERADE --random-fully, where iptables supports it. */
  randomFully: boolean;
  /** The address family this ruleset is for (iptables or ip6tables); default IPv4. clusterCIDR and every address below must be of it. */
  family?: IPFamily;
  /** This node's name, for EndpointSlice node hints (PreferSameNode). */
  nodeName?: string;
  /** This node's `topology.kubernetes.io/zone` label, for zone hints (PreferSameZone); unset: zone hints unused. */
  nodeZone?: string;
  /** This node's primary IP of this family: a loadBalancerSourceRanges entry containing it also admits the LB IPs as sources (upstream allowFromNode). */
  nodeIP?: string;
  /** The node IPs (this family) NodePorts are accepted on, resolved from --nodeport-addresses; unset: every local address. */
  nodePortAddresses?: readonly string[];
  /**
   * --nodeport-addresses as given (CIDRs or `primary`) and this host's
   * addresses: resolved into nodePortAddresses at each sync, with the Node's
   * primary IPs from the snapshot. Not used by the renderer itself.
   */
  nodePortSpec?: { spec: readonly string[]; localAddresses: readonly string[] };
  /** iptables.localhostNodePorts (default true): NodePorts on 127.0.0.0/8 (IPv4), with route_localnet=1 and its guard rule. */
  localhostNodePorts?: boolean;
  /** More than 1000 endpoints in total (upstream's threshold): per-endpoint comments are left out. */
  largeClusterMode?: boolean;
}

export const DEFAULT_RENDER_CONFIG: RenderConfig = { masqueradeAll: false, masqueradeBit: 14, randomFully: true };

export interface RestoreInput extends BuiltInput {
  /** Per-service chains written by this input, `table/CHAIN` (to know later which are stale). */
  serviceChains: Set<string>;
}

export interface FullRenderOptions {
  /** Jump rules missing from the built-in chains, to insert. */
  missingJumps: readonly JumpRule[];
  /** Per-service chains (`table/CHAIN`) present in the kernel but not wanted any more: flushed and deleted. */
  staleServiceChains: Iterable<string>;
}

function jumpLine(j: JumpRule): string {
  const extra = j.extra.length > 0 ? `${j.extra.join(' ')} ` : '';
  const note = j.comment !== '' ? `${comment(j.comment)} ` : '';
  return `-I ${j.from} ${extra}${note}-j ${j.to}`;
}

/** Renders every service port of the snapshot, in key order. */
export function renderAll(snapshot: Snapshot, cfg: RenderConfig): Map<string, RenderedServicePort> {
  const out = new Map<string, RenderedServicePort>();
  for (const key of [...snapshot.servicePorts.keys()].sort()) out.set(key, renderServicePort(snapshot.servicePorts.get(key)!, cfg));
  return out;
}

/** Writes one shared chain whole: head, every port's contribution (in key order), tail. */
export function writeSharedChain(b: RestoreInputBuilder, id: string, ports: Iterable<RenderedServicePort>, cfg: RenderConfig): void {
  const sc = SHARED_CHAINS.find((c) => c.id === id);
  if (!sc) throw new Error(`unknown shared chain ${id}`);
  b.chain(sc.table, sc.name, sc.head(cfg));
  for (const p of ports) b.rules(sc.table, p.shared.get(id) ?? []);
  b.rules(sc.table, sc.tail(cfg));
}

/**
 * Renders one iptables-restore (--noflush) input that rewrites every chain
 * this agent owns, for the whole snapshot. Declaring a chain (`:NAME - [0:0]`)
 * flushes it, so the result does not depend on what was there before.
 */
export function renderFull(snapshot: Snapshot, cfg: RenderConfig, opts: FullRenderOptions): RestoreInput {
  return renderFullFrom(renderAll(snapshot, cfg), cfg, opts);
}

/**
 * An empty chain in each table whose disappearance tells the agent that
 * someone flushed or deleted our rules (as upstream's KUBE-PROXY-CANARY).
 */
export const CANARY_CHAIN = 'KUBE-PROXY-CANARY';
export const CANARY_TABLES = ['mangle', 'nat', 'filter'] as const;

export function renderFullFrom(ports: Map<string, RenderedServicePort>, cfg: RenderConfig, opts: FullRenderOptions): RestoreInput {
  const b = new RestoreInputBuilder();
  for (const table of CANARY_TABLES) b.declare(table, CANARY_CHAIN);
  for (const sc of SHARED_CHAINS) b.declare(sc.table, sc.name);
  const missing = new Set(opts.missingJumps.map(jumpKey));
  for (const j of opts.missingJumps) if (missing.has(jumpKey(j))) b.rules(j.table, [jumpLine(j)]);
  for (const sc of SHARED_CHAINS) writeSharedChain(b, sc.id, ports.values(), cfg);
  const serviceChains = new Set<string>();
  for (const p of ports.values()) {
    for (const c of p.chains) {
      b.chain(c.table, c.name, c.rules);
      serviceChains.add(`${c.table}/${c.name}`);
    }
  }
  for (const id of [...opts.staleServiceChains].sort()) {
    if (serviceChains.has(id)) continue;
    const [table, name] = id.split('/') as ['filter' | 'nat', string];
    b.delete(table, name);
  }
  return { ...b.build(), serviceChains };
}
