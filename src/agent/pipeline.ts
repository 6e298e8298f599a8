/**
 * One pipeline per address family: a store holding that family's service
 * ports and the backend that programs them (iptables mode: iptables for IPv4,
 * ip6tables for IPv6; nftables mode: the tables `ip kube-proxy` and
 * `ip6 kube-proxy`), each sync one transaction per family. Sources write to
 * all stores at once through FamilyStores.
 */
import type { AgentOptions } from './options.js';
import type { Logger } from './log.js';
import { ClusterStore, FamilyStores } from './model/store.js';
import type { IPFamily } from './model/types.js';
import { IptablesBackend } from '../backends/iptables/backend.js';
import type { RenderConfig } from '../backends/iptables/render.js';
import { execIptables } from '../backends/iptables/tool.js';
import { commandsFor, detectVariant } from '../backends/iptables/variant.js';
import { localhostNodePortsEnabled } from '../backends/iptables/layout.js';
import { localAddresses } from './util/local-addresses.js';
import { readFile, writeFile } from 'node:fs/promises';
import type { IptablesTool } from '../backends/iptables/tool.js';
import type { Backend } from '../backends/types.js';
import type { Snapshot } from './model/types.js';
import { NftablesBackend } from '../backends/nftables/backend.js';
import { nftConfigFrom } from '../backends/nftables/config.js';
import type { NftApplier } from '../backends/nftables/nft/applier.js';
import { existsSync } from 'node:fs';

/** What the agent needs from a mode's backend, beyond syncing. */
export interface ModeBackend extends Backend {
  /** The input a full sync would hand to the kernel tool now (reads, never writes): --dry-run. */
  plan(snapshot: Snapshot): Promise<{ text: string }>;
  /** False when someone flushed or deleted our rules since the last full sync. */
  canaryIntact(): Promise<boolean>;
  /** The cluster's ServiceCIDRs changed (nftables mode uses them; iptables mode does not). */
  setServiceCIDRs?(cidrs: readonly string[]): void;
}

export interface FamilyPipeline {
  family: IPFamily;
  store: ClusterStore;
  backend: ModeBackend;
}

export interface Tools {
  iptables?: IptablesTool;
  /** ip6tables; when absent (and iptables was given), IPv6 is not programmed. */
  ip6tables?: IptablesTool;
  /** nft (both families' tables); when given, nftables mode programs IPv4 and IPv6 through it. */
  nft?: NftApplier;
}

export function renderConfigFor(opts: AgentOptions, family: IPFamily, localAddresses: readonly string[] = []): RenderConfig {
  const cidr = family === 'IPv4' ? opts.clusterCIDR : opts.clusterCIDR6;
  return {
    family,
    ...(cidr ? { clusterCIDR: cidr } : {}),
    masqueradeAll: opts.masqueradeAll,
    masqueradeBit: opts.masqueradeBit,
    randomFully: true,
    nodeName: opts.hostnameOverride,
    localhostNodePorts: opts.localhostNodePorts,
    ...(opts.nodePortAddresses.length > 0 ? { nodePortSpec: { spec: opts.nodePortAddresses, localAddresses } } : {}),
  };
}

/**
 * The tools per family. With injected tools (tests), exactly those. Otherwise
 * iptables always, and ip6tables when it runs on this host (as upstream,
 * which proxies IPv6 only where the node supports it).
 */
/**
 * Upstream sets net.ipv4.conf.all.route_localnet=1 when NodePorts are
 * accepted on 127.0.0.1 (and guards it with the KUBE-FIREWALL rule that drops
 * martian packets to 127.0.0.0/8 from outside).
 */
export async function enableRouteLocalnet(opts: AgentOptions, log: Logger): Promise<void> {
  if (!localhostNodePortsEnabled(renderConfigFor(opts, 'IPv4', []))) return;
  const path = '/proc/sys/net/ipv4/conf/all/route_localnet';
  try {
    if ((await readFile(path, 'utf8')).trim() === '1') return;
    await writeFile(path, '1');
    log.info(0, 'set sysctl for localhost NodePorts', { sysctl: 'net.ipv4.conf.all.route_localnet', value: 1 });
  } catch (err) {
    log.warn('cannot set net.ipv4.conf.all.route_localnet=1: NodePorts on 127.0.0.1 will not work', { err: (err as Error).message });
  }
}

/** This host's addresses, when --nodeport-addresses needs them. */
export async function addressesForNodePorts(opts: AgentOptions, log: Logger): Promise<string[]> {
  if (opts.nodePortAddresses.length === 0 || opts.nodePortAddresses.includes('primary')) return [];
  try {
    return await localAddresses();
  } catch (err) {
    log.warn('cannot list local addresses for --nodeport-addresses; NodePorts will be accepted on none of them', { err: (err as Error).message });
    return [];
  }
}

export async function resolveTools(tools: Tools, log: Logger): Promise<Map<IPFamily, IptablesTool>> {
  const out = new Map<IPFamily, IptablesTool>();
  if (tools.iptables) {
    out.set('IPv4', tools.iptables);
    if (tools.ip6tables) out.set('IPv6', tools.ip6tables);
    return out;
  }
  const detected = await detectVariant();
  log.info(detected.variant === 'default' ? 2 : 0, 'iptables variant', {
    use: detected.variant === 'default' ? 'iptables (system default)' : `iptables-${detected.variant}`,
    legacyRules: detected.legacy,
    nftRules: detected.nft,
  });
  out.set('IPv4', execIptables(commandsFor(detected.variant, 'IPv4')));
  const v6 = tools.ip6tables ?? execIptables(commandsFor(detected.variant, 'IPv6'));
  try {
    await v6.chainExists('filter', 'INPUT');
    out.set('IPv6', v6);
  } catch (err) {
    log.warn('ip6tables is not usable on this host; proxying IPv4 only', { err: (err as Error).message });
  }
  return out;
}

/**
 * The families nftables mode programs: both with an injected applier (tests);
 * otherwise IPv4, and IPv6 when this kernel has it (as upstream, which
 * proxies IPv6 only where the node supports it).
 */
export function nftFamilies(injectedApplier: boolean): IPFamily[] {
  return injectedApplier || existsSync('/proc/net/if_inet6') ? ['IPv4', 'IPv6'] : ['IPv4'];
}

/** The pipelines of iptables mode, one per tool. */
export function makePipelines(
  opts: AgentOptions,
  tools: Map<IPFamily, IptablesTool>,
  localAddresses: readonly string[] = [],
): { pipelines: FamilyPipeline[]; stores: FamilyStores } {
  return withStores(opts, [...tools].map(([family, tool]) => [family, new IptablesBackend(tool, renderConfigFor(opts, family, localAddresses))]));
}

/** The pipelines of nftables mode, one per family, all through one nft applier. */
export function makeNftPipelines(
  opts: AgentOptions,
  nft: NftApplier,
  families: readonly IPFamily[],
  localAddresses: readonly string[] = [],
): { pipelines: FamilyPipeline[]; stores: FamilyStores } {
  return withStores(opts, families.map((family) => [family, new NftablesBackend(nft, nftConfigFrom(renderConfigFor(opts, family, localAddresses)))]));
}

function withStores(opts: AgentOptions, backends: Array<[IPFamily, ModeBackend]>): { pipelines: FamilyPipeline[]; stores: FamilyStores } {
  const pipelines = backends.map(([family, backend]) => ({ family, backend, store: new ClusterStore(opts.hostnameOverride, family) }));
  return { pipelines, stores: new FamilyStores(pipelines.map((p) => p.store)) };
}
