/**
 * The effective settings from the config file (--config) and the flags the
 * user explicitly passed, with upstream kube-proxy's precedence.
 *
 * THE RULE (upstream kube-proxy 1.31-1.34, cmd/kube-proxy/app/options.go,
 * Options.Complete):
 *
 *  - Without --config: defaults, overridden by each flag the user passed.
 *  - With --config: the file REPLACES the flag-parsed configuration wholesale
 *    (`o.config = c`), so every other flag is silently ignored -- upstream's
 *    help for these flags says "This parameter is ignored if a config file is
 *    specified by --config" (kubernetes PR #107157). Only two kinds of flags
 *    still win over the file:
 *      * --hostname-override, when non-empty (processHostnameOverrideFlag;
 *        kubeadm's DaemonSet relies on it: `--hostname-override=$(NODE_NAME)`);
 *      * the logging flags (-v/--v, --vmodule, --logging-format, ...), copied
 *        onto the file's `logging` when passed (copyLogsFromFlags).
 *    Making all flags override the file was proposed (kubernetes PR #101273,
 *    issues #98302, #108737, #120603) and not merged.
 *
 * kube-proxy-ts follows that rule, so the same command line and file behave
 * the same, but does not stay silent: each flag ignored because of --config
 * gets one warning naming the config field to set instead.
 *
 * Only flags the user actually passed count: a key present in `flags` means
 * "passed on the command line" (with commander: getOptionValueSource(k) === 'cli').
 */
import {
  ConfigError,
  type ConfigProblem,
  DEFAULT_HEALTHZ_PORT,
  DEFAULT_METRICS_PORT,
  type KubeProxyConfig,
  appendPortIfNeeded,
  defaultKubeProxyConfig,
  parseClusterCIDRs,
  validateKubeProxyConfig,
  withDefaults,
} from './kubeproxy-config.js';
import { UPSTREAM_FLAGS } from './upstream-flags.js';

/** Flags the user explicitly passed, already parsed (durations in ms). Absent = not passed. */
export interface ExplicitFlags {
  /** --proxy-mode */
  proxyMode?: string;
  /** --hostname-override */
  hostnameOverride?: string;
  /** --cluster-cidr (one CIDR or a comma-separated dual-stack pair) */
  clusterCIDR?: string;
  /** --masquerade-all */
  masqueradeAll?: boolean;
  /** --iptables-masquerade-bit */
  masqueradeBit?: number;
  /** --iptables-sync-period */
  syncPeriodMs?: number;
  /** --iptables-min-sync-period */
  minSyncPeriodMs?: number;
  /** --healthz-bind-address ('' disables the server; a bare IP gets port 10256) */
  healthzBindAddress?: string;
  /** --metrics-bind-address ('' disables the server; a bare IP gets port 10249) */
  metricsBindAddress?: string;
  /** --kubeconfig */
  kubeconfig?: string;
  /** --kube-api-qps */
  kubeAPIQPS?: number;
  /** --kube-api-burst */
  kubeAPIBurst?: number;
  /** --config-sync-period */
  configSyncPeriodMs?: number;
  /** --v */
  verbosity?: number;
  /** --nodeport-addresses (CIDRs, or `primary`) */
  nodePortAddresses?: string[];
  /** --iptables-localhost-nodeports */
  localhostNodePorts?: boolean;
}

/** What kube-proxy-ts runs with. */
export interface EffectiveSettings {
  mode: 'iptables' | 'nftables';
  /** The IPv4 cluster CIDR (canonical), if any. */
  clusterCIDR: string | undefined;
  /** The IPv6 cluster CIDR (canonical), if any (dual-stack: `--cluster-cidr=v4,v6`). */
  clusterCIDR6: string | undefined;
  /** Trimmed and lower-cased; undefined means "use the host name". */
  hostnameOverride: string | undefined;
  masqueradeAll: boolean;
  masqueradeBit: number;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  /** `IP:port`, or '' when disabled. */
  healthzBindAddress: string;
  /** `IP:port`, or '' when disabled. */
  metricsBindAddress: string;
  /** Path of the kubeconfig; undefined means in-cluster configuration. */
  kubeconfig: string | undefined;
  qps: number;
  burst: number;
  configSyncPeriodMs: number;
  verbosity: number;
  /** CIDRs or `primary`; empty: NodePorts on every local address. */
  nodePortAddresses: string[];
  localhostNodePorts: boolean;
}

export interface MergeResult {
  settings: EffectiveSettings;
  /** One line per flag ignored because --config was given (and per IPv6 CIDR ignored). */
  warnings: string[];
}

type FlagKey = keyof ExplicitFlags;

/** Each ExplicitFlags key's upstream flag name. */
export const FLAG_NAMES: Readonly<Record<FlagKey, string>> = {
  proxyMode: 'proxy-mode',
  hostnameOverride: 'hostname-override',
  clusterCIDR: 'cluster-cidr',
  masqueradeAll: 'masquerade-all',
  masqueradeBit: 'iptables-masquerade-bit',
  syncPeriodMs: 'iptables-sync-period',
  minSyncPeriodMs: 'iptables-min-sync-period',
  healthzBindAddress: 'healthz-bind-address',
  metricsBindAddress: 'metrics-bind-address',
  kubeconfig: 'kubeconfig',
  kubeAPIQPS: 'kube-api-qps',
  kubeAPIBurst: 'kube-api-burst',
  configSyncPeriodMs: 'config-sync-period',
  verbosity: 'v',
  nodePortAddresses: 'nodeport-addresses',
  localhostNodePorts: 'iptables-localhost-nodeports',
};

/** Flags that win over --config upstream. */
const WIN_OVER_FILE: ReadonlySet<FlagKey> = new Set<FlagKey>(['hostnameOverride', 'verbosity']);

const COMMAND_LINE = 'command line';

function configFieldOf(flag: string): string | undefined {
  return UPSTREAM_FLAGS.find((f) => f.name === flag)?.configField;
}

/** Writes the passed flags into a (defaulted) configuration, as upstream's flag parsing does. */
function applyFlags(c: KubeProxyConfig, flags: ExplicitFlags): void {
  if (flags.proxyMode !== undefined) c.mode = flags.proxyMode as KubeProxyConfig['mode'];
  if (flags.clusterCIDR !== undefined) c.clusterCIDR = flags.clusterCIDR;
  // Upstream's --masquerade-all and --iptables-(min-)sync-period set mode-independent
  // fields of its internal config: they apply in nftables mode too. --iptables-masquerade-bit does not.
  if (flags.masqueradeAll !== undefined) c.iptables.masqueradeAll = c.nftables.masqueradeAll = flags.masqueradeAll;
  if (flags.masqueradeBit !== undefined) c.iptables.masqueradeBit = flags.masqueradeBit;
  if (flags.syncPeriodMs !== undefined) c.iptables.syncPeriod = c.nftables.syncPeriod = flags.syncPeriodMs;
  if (flags.minSyncPeriodMs !== undefined) c.iptables.minSyncPeriod = c.nftables.minSyncPeriod = flags.minSyncPeriodMs;
  if (flags.healthzBindAddress !== undefined) c.healthzBindAddress = appendPortIfNeeded(flags.healthzBindAddress, DEFAULT_HEALTHZ_PORT);
  if (flags.metricsBindAddress !== undefined) c.metricsBindAddress = appendPortIfNeeded(flags.metricsBindAddress, DEFAULT_METRICS_PORT);
  if (flags.kubeconfig !== undefined) c.clientConnection.kubeconfig = flags.kubeconfig;
  if (flags.kubeAPIQPS !== undefined) c.clientConnection.qps = flags.kubeAPIQPS;
  if (flags.kubeAPIBurst !== undefined) c.clientConnection.burst = flags.kubeAPIBurst;
  if (flags.configSyncPeriodMs !== undefined) c.configSyncPeriod = flags.configSyncPeriodMs;
  if (flags.nodePortAddresses !== undefined) c.nodePortAddresses = flags.nodePortAddresses;
  if (flags.localhostNodePorts !== undefined) c.iptables.localhostNodePorts = flags.localhostNodePorts;
}

/** Reports a problem in a flag-built configuration with the flag's name rather than the config path. */
function asFlagProblem(p: ConfigProblem): ConfigProblem {
  const flag = p.field === undefined ? undefined : UPSTREAM_FLAGS.find((f) => f.configField === p.field);
  return flag ? { field: `--${flag.name}`, message: p.message } : p;
}

/**
 * The effective settings from the loaded config file (undefined without
 * --config) and the flags the user explicitly passed, with upstream's
 * precedence (see the comment at the top of this file). Throws ConfigError
 * for an invalid combination (e.g. a blank --hostname-override, or a minimum
 * sync period longer than the sync period).
 */
export function mergeConfig(file: KubeProxyConfig | undefined, flags: ExplicitFlags): MergeResult {
  const warnings: string[] = [];
  const passed = (Object.keys(FLAG_NAMES) as FlagKey[]).filter((k) => flags[k] !== undefined);
  let config: KubeProxyConfig;

  if (file) {
    config = withDefaults(file);
    for (const k of passed) {
      if (WIN_OVER_FILE.has(k)) continue;
      const name = FLAG_NAMES[k];
      const field = configFieldOf(name);
      warnings.push(`--${name} is ignored because --config is given (upstream kube-proxy ignores it too)${field ? `; set ${field} in the config file instead` : ''}`);
    }
    const problems = validateKubeProxyConfig(config);
    if (problems.length > 0) throw new ConfigError('config file', problems);
  } else {
    config = defaultKubeProxyConfig();
    applyFlags(config, flags);
    const problems = validateKubeProxyConfig(config);
    if (problems.length > 0) throw new ConfigError(COMMAND_LINE, problems.map(asFlagProblem));
  }

  // --hostname-override wins over the file; upstream refuses a blank one.
  let hostnameOverride: string | undefined = config.hostnameOverride.trim().toLowerCase() || undefined;
  if (flags.hostnameOverride !== undefined && flags.hostnameOverride !== '') {
    const name = flags.hostnameOverride.trim();
    if (name === '') throw new ConfigError(COMMAND_LINE, { field: '--hostname-override', message: 'must not be blank' });
    hostnameOverride = name.toLowerCase();
  }

  let clusterCIDR: string | undefined;
  let clusterCIDR6: string | undefined;
  if (config.clusterCIDR !== '') {
    const r = parseClusterCIDRs(config.clusterCIDR);
    if ('problem' in r) throw new ConfigError(file ? 'config file' : COMMAND_LINE, { field: file ? 'clusterCIDR' : '--cluster-cidr', message: r.problem });
    clusterCIDR = r.ipv4;
    clusterCIDR6 = r.ipv6;
  }

  // As upstream's v1alpha1 conversion: the masquerade and period fields of the mode's own section.
  const mode = config.mode === 'nftables' ? 'nftables' : 'iptables';
  const sec = config[mode];
  const settings: EffectiveSettings = {
    mode,
    clusterCIDR,
    clusterCIDR6,
    hostnameOverride,
    masqueradeAll: sec.masqueradeAll,
    masqueradeBit: sec.masqueradeBit ?? 14,
    syncPeriodMs: sec.syncPeriod,
    minSyncPeriodMs: sec.minSyncPeriod,
    healthzBindAddress: config.healthzBindAddress,
    metricsBindAddress: config.metricsBindAddress,
    kubeconfig: config.clientConnection.kubeconfig || undefined,
    qps: config.clientConnection.qps,
    burst: config.clientConnection.burst,
    configSyncPeriodMs: config.configSyncPeriod,
    // The logging flags win over the file's logging section.
    verbosity: flags.verbosity ?? config.logging.verbosity,
    nodePortAddresses: config.nodePortAddresses ?? [],
    localhostNodePorts: config.iptables.localhostNodePorts ?? true,
  };
  return { settings, warnings };
}
