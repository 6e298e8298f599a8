/**
 * Upstream kube-proxy's command-line flags (Kubernetes 1.31-1.34, Linux build:
 * cmd/kube-proxy/app/options.go, the component-base logging flags, --version
 * and --help), each with what kube-proxy-ts does with it:
 *
 *  - 'implemented': kube-proxy-ts accepts it and honours it (options.ts must
 *    register it).
 *  - 'ignored': accepted, and ignored with one warning (`ignoredFlagWarning`):
 *    it tunes something kube-proxy-ts does not do yet, and ignoring it does not
 *    change which packets go where (conntrack sysctls, OOM score, profiling,
 *    log formatting, ...). kind, for one, passes --conntrack-max-per-core=0.
 *  - 'refused': exit 2 with `refusedFlagMessage`: honouring it would change
 *    the proxying and kube-proxy-ts cannot yet (IPVS, nodeport-addresses,
 *    detect-local-mode, ...), or it is a Windows-only flag.
 *
 * `classifyUnknownFlag` turns commander's "unknown option" into the right
 * message: an upstream flag this project does not support gets a clear
 * sentence; anything else stays an unknown option.
 */

export type FlagSupport = 'implemented' | 'ignored' | 'refused';

export interface UpstreamFlag {
  /** Long name, without the leading dashes. */
  name: string;
  /** One-letter form (`-v`), if any. */
  shorthand?: string;
  /** False for boolean flags (`--masquerade-all`, `--masquerade-all=false`). */
  takesValue: boolean;
  support: FlagSupport;
  /** The KubeProxyConfiguration field it sets, if any. */
  configField?: string;
  /** Only registered by upstream's Windows build. */
  windowsOnly?: true;
  /** Marked deprecated upstream. */
  deprecated?: true;
  /** Why it is ignored or refused, or what it does. */
  note?: string;
}

const f = (name: string, takesValue: boolean, support: FlagSupport, extra: Omit<UpstreamFlag, 'name' | 'takesValue' | 'support'> = {}): UpstreamFlag => ({
  name,
  takesValue,
  support,
  ...extra,
});

export const UPSTREAM_FLAGS: readonly UpstreamFlag[] = [
  // Config file and process control.
  f('config', true, 'implemented', { note: 'the KubeProxyConfiguration file' }),
  f('write-config-to', true, 'refused', { note: 'writing the default configuration is not implemented yet' }),
  f('cleanup', false, 'implemented'),
  f('init-only', false, 'refused', { note: 'kube-proxy-ts has no privileged init step yet' }),
  f('version', false, 'refused', { note: 'prints the upstream Kubernetes version' }),
  f('help', false, 'implemented', { shorthand: 'h' }),

  // API server connection.
  f('kubeconfig', true, 'implemented', { configField: 'clientConnection.kubeconfig' }),
  f('master', true, 'implemented', { note: 'overrides the kubeconfig server URL' }),
  f('kube-api-qps', true, 'implemented', { configField: 'clientConnection.qps' }),
  f('kube-api-burst', true, 'implemented', { configField: 'clientConnection.burst' }),
  f('kube-api-content-type', true, 'ignored', { configField: 'clientConnection.contentType' }),
  f('config-sync-period', true, 'implemented', { configField: 'configSyncPeriod' }),

  // Node identity and servers.
  f('hostname-override', true, 'implemented', { configField: 'hostnameOverride' }),
  f('bind-address', true, 'refused', { configField: 'bindAddress', note: "overriding the node's primary IP is not implemented yet" }),
  f('healthz-bind-address', true, 'implemented', { configField: 'healthzBindAddress' }),
  f('metrics-bind-address', true, 'implemented', { configField: 'metricsBindAddress' }),
  f('bind-address-hard-fail', false, 'ignored', { configField: 'bindAddressHardFail' }),
  f('healthz-port', true, 'refused', { deprecated: true, note: 'deprecated upstream; use --healthz-bind-address' }),
  f('metrics-port', true, 'refused', { deprecated: true, note: 'deprecated upstream; use --metrics-bind-address' }),
  f('profiling', false, 'ignored', { configField: 'enableProfiling' }),
  f('show-hidden-metrics-for-version', true, 'ignored', { configField: 'showHiddenMetricsForVersion' }),
  f('feature-gates', true, 'ignored', { configField: 'featureGates' }),
  f('oom-score-adj', true, 'ignored', { configField: 'oomScoreAdj' }),

  // Proxy mode and iptables.
  f('proxy-mode', true, 'implemented', { configField: 'mode' }),
  f('cluster-cidr', true, 'implemented', { configField: 'clusterCIDR' }),
  f('masquerade-all', false, 'implemented', { configField: 'iptables.masqueradeAll' }),
  f('iptables-masquerade-bit', true, 'implemented', { configField: 'iptables.masqueradeBit' }),
  f('iptables-sync-period', true, 'implemented', { configField: 'iptables.syncPeriod' }),
  f('iptables-min-sync-period', true, 'implemented', { configField: 'iptables.minSyncPeriod' }),
  f('iptables-localhost-nodeports', false, 'implemented', { configField: 'iptables.localhostNodePorts' }),
  f('nodeport-addresses', true, 'implemented', { configField: 'nodePortAddresses' }),
  f('detect-local-mode', true, 'refused', { configField: 'detectLocalMode', note: 'local traffic is detected with --cluster-cidr only' }),
  f('pod-bridge-interface', true, 'refused', { configField: 'detectLocal.bridgeInterface' }),
  f('pod-interface-name-prefix', true, 'refused', { configField: 'detectLocal.interfaceNamePrefix' }),
  f('proxy-port-range', true, 'ignored', { configField: 'portRange', deprecated: true, note: 'has no effect upstream either' }),

  // IPVS mode.
  f('ipvs-sync-period', true, 'refused', { configField: 'ipvs.syncPeriod' }),
  f('ipvs-min-sync-period', true, 'refused', { configField: 'ipvs.minSyncPeriod' }),
  f('ipvs-scheduler', true, 'refused', { configField: 'ipvs.scheduler' }),
  f('ipvs-exclude-cidrs', true, 'refused', { configField: 'ipvs.excludeCIDRs' }),
  f('ipvs-strict-arp', false, 'refused', { configField: 'ipvs.strictARP' }),
  f('ipvs-tcp-timeout', true, 'refused', { configField: 'ipvs.tcpTimeout' }),
  f('ipvs-tcpfin-timeout', true, 'refused', { configField: 'ipvs.tcpFinTimeout' }),
  f('ipvs-udp-timeout', true, 'refused', { configField: 'ipvs.udpTimeout' }),

  // Conntrack sysctls.
  f('conntrack-max-per-core', true, 'ignored', { configField: 'conntrack.maxPerCore' }),
  f('conntrack-min', true, 'ignored', { configField: 'conntrack.min' }),
  f('conntrack-tcp-timeout-established', true, 'ignored', { configField: 'conntrack.tcpEstablishedTimeout' }),
  f('conntrack-tcp-timeout-close-wait', true, 'ignored', { configField: 'conntrack.tcpCloseWaitTimeout' }),
  f('conntrack-tcp-be-liberal', false, 'ignored', { configField: 'conntrack.tcpBeLiberal' }),
  f('conntrack-udp-timeout', true, 'ignored', { configField: 'conntrack.udpTimeout' }),
  f('conntrack-udp-timeout-stream', true, 'ignored', { configField: 'conntrack.udpStreamTimeout' }),

  // Logging (component-base logs/api/v1).
  f('v', true, 'implemented', { shorthand: 'v', configField: 'logging.verbosity' }),
  f('vmodule', true, 'ignored', { configField: 'logging.vmodule' }),
  f('logging-format', true, 'ignored', { configField: 'logging.format' }),
  f('log-flush-frequency', true, 'ignored', { configField: 'logging.flushFrequency' }),
  f('log-text-split-stream', false, 'ignored', { configField: 'logging.options.text.splitStream' }),
  f('log-text-info-buffer-size', true, 'ignored', { configField: 'logging.options.text.infoBufferSize' }),
  f('log-json-split-stream', false, 'ignored', { configField: 'logging.options.json.splitStream' }),
  f('log-json-info-buffer-size', true, 'ignored', { configField: 'logging.options.json.infoBufferSize' }),

  // Windows build only (upstream's Linux build rejects them as unknown flags).
  f('windows-service', false, 'refused', { windowsOnly: true, configField: 'windowsRunAsService' }),
  f('source-vip', true, 'refused', { windowsOnly: true, configField: 'winkernel.sourceVip' }),
  f('network-name', true, 'refused', { windowsOnly: true, configField: 'winkernel.networkName' }),
  f('enable-dsr', false, 'refused', { windowsOnly: true, configField: 'winkernel.enableDSR' }),
  f('root-hnsendpoint-name', true, 'refused', { windowsOnly: true, configField: 'winkernel.rootHnsEndpointName' }),
  f('forward-healthcheck-vip', false, 'refused', { windowsOnly: true, configField: 'winkernel.forwardHealthCheckVip' }),
];

const BY_NAME = new Map(UPSTREAM_FLAGS.map((fl) => [fl.name, fl]));
const BY_SHORTHAND = new Map(UPSTREAM_FLAGS.filter((fl) => fl.shorthand).map((fl) => [fl.shorthand!, fl]));

/**
 * The flag name in a command-line argument: `--ipvs-scheduler=rr` →
 * `ipvs-scheduler`, `-v` → `v`. Upstream normalises `_` to `-` (`--ipvs_scheduler`).
 * Undefined when the argument is not a flag.
 */
function flagName(arg: string): { name: string; short: boolean } | undefined {
  const m = /^(--?)([^=]+)/.exec(arg.trim());
  if (!m || m[2] === undefined) return undefined;
  const short = m[1] === '-';
  return { name: short ? m[2] : m[2].replace(/_/g, '-'), short };
}

/** The upstream flag a command-line argument names (`--ipvs-scheduler=rr`, `-v`), if any. */
export function findUpstreamFlag(arg: string): UpstreamFlag | undefined {
  const n = flagName(arg);
  if (!n) return undefined;
  // pflag reads a single dash as a run of shorthands: `-v` or `-v=2` / `-v2`.
  if (n.short) return BY_SHORTHAND.get(n.name[0] ?? '');
  return BY_NAME.get(n.name);
}

/** Upstream flags with this support level, e.g. the 'ignored' ones, for options.ts to register. */
export function upstreamFlags(support: FlagSupport): UpstreamFlag[] {
  return UPSTREAM_FLAGS.filter((fl) => fl.support === support);
}

function display(flag: string): string {
  const n = flagName(flag);
  if (!n) return flag;
  return n.short ? `-${n.name[0] ?? ''}` : `--${n.name}`;
}

/**
 * The one-line message for an upstream flag kube-proxy-ts refuses, e.g.
 * `--ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet`.
 * `flag` may be the bare name or the argument as given (`--ipvs-scheduler=rr`).
 */
export function refusedFlagMessage(flag: string): string {
  const fl = findUpstreamFlag(flag.startsWith('-') ? flag : `--${flag}`);
  const shown = display(flag.startsWith('-') ? flag : `--${flag}`);
  if (fl?.windowsOnly) return `${shown} is a Windows-only upstream kube-proxy flag; kube-proxy-ts runs on Linux only (upstream's Linux build rejects it too)`;
  const base = `${shown} is an upstream kube-proxy flag that kube-proxy-ts does not support yet`;
  return fl?.note ? `${base} (${fl.note})` : base;
}

/** The warning for an upstream flag kube-proxy-ts accepts and ignores. */
export function ignoredFlagWarning(flag: string): string {
  const fl = findUpstreamFlag(flag.startsWith('-') ? flag : `--${flag}`);
  const shown = display(flag.startsWith('-') ? flag : `--${flag}`);
  const why = fl?.note ?? 'kube-proxy-ts does not implement it yet';
  return `${shown} is an upstream kube-proxy flag that kube-proxy-ts accepts but ignores (${why})`;
}

/**
 * What to print, with exit status 2, for an argument commander rejected as an
 * unknown option (`arg` as commander reports it: `--ipvs-scheduler=rr`).
 * An upstream flag gets a sentence saying so; anything else stays an unknown
 * option (`fallback`, e.g. commander's own message with its "Did you mean",
 * or `error: unknown option 'ARG'`). Ends with a newline, like commander's output.
 */
export function classifyUnknownFlag(arg: string, fallback?: string): string {
  const fl = findUpstreamFlag(arg);
  if (!fl) {
    const text = fallback ?? `error: unknown option '${arg}'`;
    return text.endsWith('\n') ? text : `${text}\n`;
  }
  if (fl.support === 'refused') return `error: ${refusedFlagMessage(arg)}\n`;
  // An implemented or ignored flag only reaches here if options.ts forgot to register it.
  return `error: ${display(arg)} is an upstream kube-proxy flag that kube-proxy-ts should accept, but this build does not register it (a bug)\n`;
}
