/**
 * One pipeline per address family: a store holding that family's service
 * ports and the backend that programs them (iptables for IPv4, ip6tables for
 * IPv6), each sync one transaction per family. Sources write to all stores
 * at once through FamilyStores.
 */
import type { AgentOptions } from './options.js';
import type { Logger } from './log.js';
import { ClusterStore, FamilyStores } from './model/store.js';
import type { IPFamily } from './model/types.js';
import { IptablesBackend } from '../backends/iptables/backend.js';
import type { RenderConfig } from '../backends/iptables/render.js';
import { execIptables } from '../backends/iptables/tool.js';
import { commandsFor, detectVariant } from '../backends/iptables/variant.js';
import type { IptablesTool } from '../backends/iptables/tool.js';

export interface FamilyPipeline {
  family: IPFamily;
  store: ClusterStore;
  backend: IptablesBackend;
  tool: IptablesTool;
}

export interface Tools {
  iptables?: IptablesTool;
  /** ip6tables; when absent (and iptables was given), IPv6 is not programmed. */
  ip6tables?: IptablesTool;
}

export function renderConfigFor(opts: AgentOptions, family: IPFamily): RenderConfig {
  const cidr = family === 'IPv4' ? opts.clusterCIDR : opts.clusterCIDR6;
  return {
    family,
    ...(cidr ? { clusterCIDR: cidr } : {}),
    masqueradeAll: opts.masqueradeAll,
    masqueradeBit: opts.masqueradeBit,
    randomFully: true,
    nodeName: opts.hostnameOverride,
  };
}

/**
 * The tools per family. With injected tools (tests), exactly those. Otherwise
 * iptables always, and ip6tables when it runs on this host (as upstream,
 * which proxies IPv6 only where the node supports it).
 */
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

export function makePipelines(opts: AgentOptions, tools: Map<IPFamily, IptablesTool>): { pipelines: FamilyPipeline[]; stores: FamilyStores } {
  const pipelines = [...tools].map(([family, tool]) => ({
    family,
    tool,
    store: new ClusterStore(opts.hostnameOverride, family),
    backend: new IptablesBackend(tool, renderConfigFor(opts, family)),
  }));
  return { pipelines, stores: new FamilyStores(pipelines.map((p) => p.store)) };
}
