/**
 * The types of the kube-proxy configuration file (`kubeproxy.config.k8s.io/v1alpha1`
 * `KubeProxyConfiguration`) and its errors.
 */

export const KUBE_PROXY_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KUBE_PROXY_KIND = 'KubeProxyConfiguration';

/** A Go `metav1.Duration`, held in milliseconds (written as `30s`, `1m0s`). */
export type DurationMs = number;

/** `ProxyMode`: '' means the platform default (iptables on Linux). */
export type ProxyModeName = '' | 'iptables' | 'ipvs' | 'nftables';
/** `LocalMode`: '' means ClusterCIDR. */
export type LocalModeName = '' | 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';

/** component-base `ClientConnectionConfiguration`. */
export interface ClientConnectionConfiguration {
  kubeconfig: string;
  acceptContentTypes: string;
  contentType: string;
  qps: number;
  burst: number;
}

/** component-base logs/api/v1 `OutputRoutingOptions` (under `options.text` and `options.json`). */
export interface OutputRoutingOptions {
  splitStream: boolean;
  /** A resource.Quantity, e.g. "0", "64Ki". */
  infoBufferSize: string;
}

export interface VModuleItem {
  filePattern: string;
  verbosity: number;
}

/** component-base logs/api/v1 `LoggingConfiguration`. */
export interface LoggingConfiguration {
  format: string;
  /** A duration string, or an integer number of nanoseconds in the file. */
  flushFrequency: DurationMs;
  verbosity: number;
  vmodule: VModuleItem[];
  options: { text: OutputRoutingOptions; json: OutputRoutingOptions };
}

export interface KubeProxyIPTablesConfiguration {
  masqueradeBit: number | null;
  masqueradeAll: boolean;
  localhostNodePorts: boolean | null;
  syncPeriod: DurationMs;
  minSyncPeriod: DurationMs;
}

export interface KubeProxyIPVSConfiguration {
  syncPeriod: DurationMs;
  minSyncPeriod: DurationMs;
  scheduler: string;
  excludeCIDRs: string[] | null;
  strictARP: boolean;
  tcpTimeout: DurationMs;
  tcpFinTimeout: DurationMs;
  udpTimeout: DurationMs;
}

export interface KubeProxyNFTablesConfiguration {
  masqueradeBit: number | null;
  masqueradeAll: boolean;
  syncPeriod: DurationMs;
  minSyncPeriod: DurationMs;
}

export interface KubeProxyConntrackConfiguration {
  maxPerCore: number | null;
  min: number | null;
  tcpEstablishedTimeout: DurationMs | null;
  tcpCloseWaitTimeout: DurationMs | null;
  tcpBeLiberal: boolean;
  udpTimeout: DurationMs;
  udpStreamTimeout: DurationMs;
}

export interface KubeProxyWinkernelConfiguration {
  networkName: string;
  sourceVip: string;
  enableDSR: boolean;
  rootHnsEndpointName: string;
  forwardHealthCheckVip: boolean;
}

export interface DetectLocalConfiguration {
  bridgeInterface: string;
  interfaceNamePrefix: string;
}

/**
 * `kubeproxy.config.k8s.io/v1alpha1` `KubeProxyConfiguration` (Kubernetes
 * 1.31-1.34). Fields that are Go pointers upstream are `| null` here: null
 * means unset, and `withDefaults` replaces every null with its default.
 */
export interface KubeProxyConfig {
  apiVersion: typeof KUBE_PROXY_API_VERSION;
  kind: typeof KUBE_PROXY_KIND;
  featureGates: Record<string, boolean>;
  clientConnection: ClientConnectionConfiguration;
  logging: LoggingConfiguration;
  hostnameOverride: string;
  bindAddress: string;
  healthzBindAddress: string;
  metricsBindAddress: string;
  bindAddressHardFail: boolean;
  enableProfiling: boolean;
  showHiddenMetricsForVersion: string;
  mode: ProxyModeName;
  iptables: KubeProxyIPTablesConfiguration;
  ipvs: KubeProxyIPVSConfiguration;
  nftables: KubeProxyNFTablesConfiguration;
  winkernel: KubeProxyWinkernelConfiguration;
  detectLocalMode: LocalModeName;
  detectLocal: DetectLocalConfiguration;
  /** One CIDR, or a comma-separated dual-stack pair. */
  clusterCIDR: string;
  /** CIDRs, or the single string 'primary'; null/empty means every local address. */
  nodePortAddresses: string[] | null;
  oomScoreAdj: number | null;
  conntrack: KubeProxyConntrackConfiguration;
  configSyncPeriod: DurationMs;
  /** Unused upstream since the userspace proxy was removed. */
  portRange: string;
  windowsRunAsService: boolean;
}

/** One problem, with the field path it is about (`iptables.masqueradeBit`), if any. */
export interface ConfigProblem {
  field?: string;
  message: string;
}

/**
 * A configuration (file or command line) kube-proxy-ts cannot run with. The
 * message is `SOURCE: FIELD: WHAT`, one line per problem, e.g.
 * `config.conf: iptables.masqueradeBit: must be 0-31, got 40`.
 */
export class ConfigError extends Error {
  readonly source: string;
  readonly problems: readonly ConfigProblem[];
  constructor(source: string, problems: ConfigProblem | ConfigProblem[]) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.map((p) => formatProblem(source, p)).join('\n'));
    this.name = 'ConfigError';
    this.source = source;
    this.problems = list;
  }
}

export function formatProblem(source: string, p: ConfigProblem): string {
  return p.field ? `${source}: ${p.field}: ${p.message}` : `${source}: ${p.message}`;
}

export interface LoadOptions {
  /**
   * 'error' (default): an unknown field is a ConfigError. 'warn': as upstream's
   * lenient fallback, the field is dropped with one warning.
   */
  unknownFields?: 'error' | 'warn';
}

export interface LoadResult {
  /** Decoded, defaulted (`withDefaults`) and validated. */
  config: KubeProxyConfig;
  /** One line per not-implemented field set to a non-default value (and per dropped unknown field). */
  warnings: string[];
}
