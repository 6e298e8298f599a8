/**
 * The command line: upstream kube-proxy's flags (those implemented, and the
 * upstream ones accepted with a warning), `--config` KubeProxyConfiguration
 * files with upstream's precedence (see config/merge.ts), and this project's
 * own flags (--manifests, --once, --dry-run, --service-proxy-name). Parsing is
 * pure apart from reading the config file: it returns the options, or the
 * text and exit status of a usage error naming the flag or field.
 */
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadKubeProxyConfig } from './config/kubeproxy-config.js';
import type { KubeProxyConfig } from './config/kubeproxy-config.js';
import { mergeConfig } from './config/merge.js';
import type { ExplicitFlags } from './config/merge.js';
import { classifyUnknownFlag, ignoredFlagWarning, upstreamFlags } from './config/upstream-flags.js';
import { parseDuration } from './util/duration.js';

export type ProxyMode = 'iptables' | 'nftables';

export interface AgentOptions {
  proxyMode: ProxyMode;
  /** Read objects from this directory instead of an API server. */
  manifests?: string;
  kubeconfig?: string;
  master?: string;
  serviceProxyName?: string;
  hostnameOverride: string;
  /** The pods' IPv4 CIDR. */
  clusterCIDR?: string;
  /** The pods' IPv6 CIDR (dual-stack). */
  clusterCIDR6?: string;
  masqueradeAll: boolean;
  masqueradeBit: number;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  /** CIDRs or `primary` NodePorts are accepted on; empty: every local address. */
  nodePortAddresses: string[];
  /** NodePorts on 127.0.0.0/8 (with route_localnet), IPv4 only. */
  localhostNodePorts: boolean;
  /** `host:port`, or '' when disabled. */
  healthzBindAddress: string;
  metricsBindAddress: string;
  once: boolean;
  dryRun: boolean;
  cleanup: boolean;
  verbosity: number;
}

export type ParseResult =
  | { kind: 'options'; options: AgentOptions; warnings: string[] }
  | { kind: 'exit'; code: number; output: string };

class UsageError extends Error {}

const MODES = ['iptables', 'nftables'] as const;

function buildCommand(): Command {
  const cmd = new Command('kube-proxy-ts')
    .description("Programs this node's netfilter rules so that traffic to Kubernetes Services reaches their endpoints.")
    .option('--config <file>', 'a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) file; as upstream, it replaces the other flags except --hostname-override and --v')
    .option('--kubeconfig <file>', 'kubeconfig of the API server to watch (default: in-cluster configuration)')
    .option('--master <url>', "the API server's URL (overrides the kubeconfig's server)")
    .option('--manifests <dir>', "instead of an API server, read Services, EndpointSlices and Nodes from this directory's YAML/JSON files and watch it")
    .addOption(new Option('--proxy-mode <mode>', 'which proxy mode to use: iptables or nftables (starting in one removes the rules of the other)').choices(MODES).default('iptables'))
    .option('--hostname-override <name>', "this node's name, as in the Node object and endpoints' nodeName (default: the host name)")
    .option('--cluster-cidr <cidr>', "the pods' CIDR (dual-stack: IPv4,IPv6); traffic to ClusterIPs from outside it is masqueraded")
    .option('--masquerade-all', 'masquerade all traffic sent to a ClusterIP')
    .option('--iptables-masquerade-bit <bit>', 'the fwmark bit (0-31) that marks packets to masquerade', '14')
    .option('--iptables-sync-period <duration>', 'the longest time between two syncs, in both modes (e.g. 30s, 1m); full rewrites happen once an hour', '30s')
    .option('--iptables-min-sync-period <duration>', 'the shortest time between two syncs, in both modes: changes arriving faster are coalesced', '1s')
    .option('--nodeport-addresses <cidrs>', "comma-separated CIDRs (or 'primary') of the node addresses NodePorts are accepted on (default: every local address)")
    .option('--iptables-localhost-nodeports [bool]', 'accept NodePort connections to 127.0.0.1 (IPv4; sets route_localnet)', 'true')
    .option('--healthz-bind-address <host:port>', "where /healthz and /livez are served; '' disables", '0.0.0.0:10256')
    .option('--metrics-bind-address <host:port>', "where /metrics is served; '' disables", '127.0.0.1:10249')
    .option('--kube-api-qps <qps>', 'accepted for compatibility (watches are not rate limited)', '5')
    .option('--kube-api-burst <n>', 'accepted for compatibility', '10')
    .option('--config-sync-period <duration>', 'accepted for compatibility (informers do not resync)', '15m')
    .option('--service-proxy-name <name>', 'also proxy services labelled service.kubernetes.io/service-proxy-name=NAME (unlabelled ones always are)')
    .option('--once', 'sync the rules once, then exit (0 on success)', false)
    .option('--dry-run', 'print the iptables-restore (or nft -f) input a full sync would apply, and change nothing', false)
    .option('--cleanup', 'remove every rule, chain and table this proxy owns in either mode, then exit', false)
    .option('--v <level>', 'log verbosity: 0 quiet, 2 a line per sync, 4 per-object detail', '0')
    .helpOption('-h, --help', 'show this help')
    .addHelpText(
      'after',
      '\nSubcommands:\n  kube-proxy-ts trace --src IP --dst IP:PORT [--proto tcp|udp|sctp] [--input FILE] [--json]   explain where a packet goes\n  kube-proxy-ts bench --services N [...] | bench --latency [...]                                   measure sync cost and latency\n  (each takes --help)\n',
    )
    .allowExcessArguments(false)
    .exitOverride();
  // Upstream flags that change nothing about packet paths: accepted with a warning.
  for (const f of upstreamFlags('ignored')) {
    const opt = new Option(f.takesValue ? `--${f.name} <value>` : `--${f.name}`, `upstream flag, accepted and ignored${f.note ? ` (${f.note})` : ''}`);
    cmd.addOption(opt.hideHelp());
  }
  return cmd;
}

export function parseArgs(argv: string[]): ParseResult {
  const cmd = buildCommand();
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { kind: 'exit', code: 0, output: out };
      if (err.code === 'commander.unknownOption') {
        const arg = /'([^']+)'/.exec(err.message)?.[1] ?? '';
        return { kind: 'exit', code: 2, output: classifyUnknownFlag(arg, out || err.message) };
      }
      return { kind: 'exit', code: 2, output: out || `${err.message}\n` };
    }
    throw err;
  }
  try {
    return { kind: 'options', ...resolve(cmd) };
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) return { kind: 'exit', code: 2, output: `error: ${err.message}\n` };
    throw err;
  }
}

export function helpText(): string {
  return buildCommand().helpInformation();
}

type Raw = Record<string, string | boolean | undefined>;

function duration(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${flag}: ${JSON.stringify(text)} is not a duration (e.g. 1s, 500ms, 1m30s)`);
  return ms;
}

function integer(flag: string, text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${flag}: must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** The flags the user actually typed, parsed, as config/merge.ts wants them. */
function explicitFlags(cmd: Command, raw: Raw): ExplicitFlags {
  const given = (key: string): boolean => cmd.getOptionValueSource(key) === 'cli';
  const s = (key: string): string => String(raw[key]);
  const flags: ExplicitFlags = {};
  if (given('proxyMode')) flags.proxyMode = s('proxyMode');
  if (given('hostnameOverride')) flags.hostnameOverride = s('hostnameOverride');
  if (given('clusterCidr')) flags.clusterCIDR = s('clusterCidr');
  if (given('masqueradeAll')) flags.masqueradeAll = raw.masqueradeAll === true;
  if (given('iptablesMasqueradeBit')) flags.masqueradeBit = integer('iptables-masquerade-bit', s('iptablesMasqueradeBit'), 0, 31);
  if (given('iptablesSyncPeriod')) flags.syncPeriodMs = duration('iptables-sync-period', s('iptablesSyncPeriod'));
  if (given('iptablesMinSyncPeriod')) flags.minSyncPeriodMs = duration('iptables-min-sync-period', s('iptablesMinSyncPeriod'));
  if (given('healthzBindAddress')) flags.healthzBindAddress = s('healthzBindAddress');
  if (given('metricsBindAddress')) flags.metricsBindAddress = s('metricsBindAddress');
  if (given('kubeconfig')) flags.kubeconfig = s('kubeconfig');
  if (given('kubeApiQps')) flags.kubeAPIQPS = Number(s('kubeApiQps'));
  if (given('kubeApiBurst')) flags.kubeAPIBurst = integer('kube-api-burst', s('kubeApiBurst'), 0, 1_000_000);
  if (given('configSyncPeriod')) flags.configSyncPeriodMs = duration('config-sync-period', s('configSyncPeriod'));
  if (given('v')) flags.verbosity = integer('v', s('v'), 0, 10);
  if (given('nodeportAddresses')) flags.nodePortAddresses = s('nodeportAddresses').split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (given('iptablesLocalhostNodeports')) {
    const v = raw.iptablesLocalhostNodeports;
    if (v !== true && v !== 'true' && v !== 'false') throw new UsageError(`--iptables-localhost-nodeports: must be true or false, got ${JSON.stringify(v)}`);
    flags.localhostNodePorts = v !== 'false';
  }
  return flags;
}

function loadConfigFile(path: string): { config: KubeProxyConfig; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  // Upstream decodes strictly, then falls back to a lenient decode that drops unknown fields with a warning.
  return loadKubeProxyConfig(text, path, { unknownFields: 'warn' });
}

function resolve(cmd: Command): { options: AgentOptions; warnings: string[] } {
  const raw = cmd.opts<Raw>();
  const warnings: string[] = [];
  for (const f of upstreamFlags('ignored')) {
    const key = f.name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (cmd.getOptionValueSource(key) === 'cli') warnings.push(ignoredFlagWarning(f.name));
  }
  const file = typeof raw.config === 'string' ? loadConfigFile(raw.config) : undefined;
  if (file) warnings.push(...file.warnings);
  const merged = mergeConfig(file?.config, explicitFlags(cmd, raw));
  warnings.push(...merged.warnings);
  const st = merged.settings;

  const manifests = typeof raw.manifests === 'string' ? raw.manifests : undefined;
  const cleanup = raw.cleanup === true;
  if (manifests !== undefined && !cleanup) {
    let isDir = false;
    try {
      isDir = statSync(manifests).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new UsageError(`--manifests: ${JSON.stringify(manifests)} is not a readable directory`);
  }
  if (manifests !== undefined && (st.kubeconfig !== undefined || typeof raw.master === 'string')) {
    throw new UsageError('--manifests cannot be combined with --kubeconfig or --master: choose one source');
  }
  if (raw.once === true && raw.dryRun === true) throw new UsageError('--once and --dry-run cannot be used together');
  if (typeof raw.serviceProxyName === 'string' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw.serviceProxyName)) {
    throw new UsageError(`--service-proxy-name: ${JSON.stringify(raw.serviceProxyName)} is not a valid label value`);
  }
  const options: AgentOptions = {
    proxyMode: st.mode,
    ...(manifests !== undefined ? { manifests } : {}),
    ...(st.kubeconfig !== undefined ? { kubeconfig: st.kubeconfig } : {}),
    ...(typeof raw.master === 'string' ? { master: raw.master } : {}),
    ...(typeof raw.serviceProxyName === 'string' ? { serviceProxyName: raw.serviceProxyName } : {}),
    hostnameOverride: st.hostnameOverride ?? hostname().trim().toLowerCase(),
    ...(st.clusterCIDR !== undefined ? { clusterCIDR: st.clusterCIDR } : {}),
    ...(st.clusterCIDR6 !== undefined ? { clusterCIDR6: st.clusterCIDR6 } : {}),
    masqueradeAll: st.masqueradeAll,
    masqueradeBit: st.masqueradeBit,
    syncPeriodMs: st.syncPeriodMs,
    minSyncPeriodMs: st.minSyncPeriodMs,
    nodePortAddresses: st.nodePortAddresses,
    localhostNodePorts: st.localhostNodePorts,
    healthzBindAddress: st.healthzBindAddress,
    metricsBindAddress: st.metricsBindAddress,
    once: raw.once === true,
    dryRun: raw.dryRun === true,
    cleanup,
    verbosity: st.verbosity,
  };
  return { options, warnings };
}
