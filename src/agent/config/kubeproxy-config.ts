/**
 * The kube-proxy configuration file: `kubeproxy.config.k8s.io/v1alpha1`
 * `KubeProxyConfiguration`, as upstream kube-proxy reads it with `--config`
 * (and as kubeadm writes it into the `kube-proxy` ConfigMap as `config.conf`).
 *
 * Pure: text in, a typed, defaulted, validated config and a list of warnings
 * out, or a `ConfigError` naming the file and the field path. Never throws
 * anything else, whatever the input.
 *
 * What upstream does, and what this module does about it:
 *  - Decoding. Upstream converts YAML to JSON with a YAML 1.1 parser
 *    (sigs.k8s.io/yaml on go-yaml v2: `yes`/`on` are booleans, timestamps stay
 *    strings), then decodes strictly: a field of the wrong JSON type is a hard
 *    error; an unknown or duplicated field makes the strict decoder fail, after
 *    which upstream (1.31-1.34) retries with a lenient v1alpha1 decoder, logs
 *    "Using lenient decoding as strict decoding failed" and drops the field.
 *    Here an unknown field is an error by default (`unknownFields: 'error'`,
 *    catches typos); `unknownFields: 'warn'` reproduces upstream's lenient
 *    fallback with one warning per dropped field.
 *  - Defaulting (`withDefaults`) is upstream's SetDefaults_KubeProxyConfiguration:
 *    a zero value (0, "", 0s, null) means "use the default"; so, as upstream,
 *    `iptables.minSyncPeriod: 0s` in a file becomes 1s.
 *  - Validation follows upstream's pkg/proxy/apis/config/validation, reported
 *    with the v1alpha1 field paths (`iptables.masqueradeBit`).
 *  - Fields upstream has that kube-proxy-ts does not implement are accepted and
 *    produce one warning each, only when set to something other than their
 *    default. The ipvs mode is refused (not implemented yet).
 */
import { parseAllDocuments, type Tags } from 'yaml';
import { parseIP } from '../util/addr.js';
import { ConfigError, formatProblem, KUBE_PROXY_API_VERSION, KUBE_PROXY_KIND } from './config-types.js';
import type { ConfigProblem, DurationMs, KubeProxyConfig, LoadOptions, LoadResult } from './config-types.js';
import { appendPortIfNeeded, formatGoDuration, isUnspecifiedIP, parseClusterCIDRs, parseGoDuration } from './config-values.js';
import { validateKubeProxyConfig } from './validate.js';

// The types (config-types.ts), values (config-values.ts) and validation (validate.ts) live apart; importers use this module.
export { ConfigError, KUBE_PROXY_API_VERSION, KUBE_PROXY_KIND } from './config-types.js';
export type {
  ClientConnectionConfiguration,
  ConfigProblem,
  DetectLocalConfiguration,
  DurationMs,
  KubeProxyConfig,
  KubeProxyConntrackConfiguration,
  KubeProxyIPTablesConfiguration,
  KubeProxyIPVSConfiguration,
  KubeProxyNFTablesConfiguration,
  KubeProxyWinkernelConfiguration,
  LoadOptions,
  LoadResult,
  LocalModeName,
  LoggingConfiguration,
  OutputRoutingOptions,
  ProxyModeName,
  VModuleItem,
} from './config-types.js';
export { appendPortIfNeeded, bindAddressProblem, formatGoDuration, parseClusterCIDRs, parseGoDuration } from './config-values.js';
export { validateKubeProxyConfig } from './validate.js';

// ---------------------------------------------------------------------------
// Schema: the v1alpha1 field tree, with each leaf's JSON type.

type Spec =
  | { t: 'string' }
  | { t: 'bool'; ptr?: true }
  | { t: 'int32'; ptr?: true }
  | { t: 'uint32' }
  | { t: 'float32' }
  | { t: 'duration'; ptr?: true }
  | { t: 'flushFrequency' }
  | { t: 'quantity' }
  | { t: 'stringList' }
  | { t: 'boolMap' }
  | { t: 'list'; item: Spec }
  | { t: 'struct'; fields: Record<string, Spec> };

const S = { t: 'string' } as const;
const BOOL = { t: 'bool' } as const;
const BOOL_PTR = { t: 'bool', ptr: true } as const;
const INT32_PTR = { t: 'int32', ptr: true } as const;
const DUR = { t: 'duration' } as const;
const DUR_PTR = { t: 'duration', ptr: true } as const;
const struct = (fields: Record<string, Spec>): Spec => ({ t: 'struct', fields });

const OUTPUT_ROUTING = struct({ splitStream: BOOL, infoBufferSize: { t: 'quantity' } });

const ROOT: Spec = struct({
  apiVersion: S,
  kind: S,
  featureGates: { t: 'boolMap' },
  clientConnection: struct({ kubeconfig: S, acceptContentTypes: S, contentType: S, qps: { t: 'float32' }, burst: { t: 'int32' } }),
  logging: struct({
    format: S,
    flushFrequency: { t: 'flushFrequency' },
    verbosity: { t: 'uint32' },
    vmodule: { t: 'list', item: struct({ filePattern: S, verbosity: { t: 'uint32' } }) },
    options: struct({ text: OUTPUT_ROUTING, json: OUTPUT_ROUTING }),
  }),
  hostnameOverride: S,
  bindAddress: S,
  healthzBindAddress: S,
  metricsBindAddress: S,
  bindAddressHardFail: BOOL,
  enableProfiling: BOOL,
  showHiddenMetricsForVersion: S,
  mode: S,
  iptables: struct({ masqueradeBit: INT32_PTR, masqueradeAll: BOOL, localhostNodePorts: BOOL_PTR, syncPeriod: DUR, minSyncPeriod: DUR }),
  ipvs: struct({
    syncPeriod: DUR,
    minSyncPeriod: DUR,
    scheduler: S,
    excludeCIDRs: { t: 'stringList' },
    strictARP: BOOL,
    tcpTimeout: DUR,
    tcpFinTimeout: DUR,
    udpTimeout: DUR,
  }),
  nftables: struct({ masqueradeBit: INT32_PTR, masqueradeAll: BOOL, syncPeriod: DUR, minSyncPeriod: DUR }),
  winkernel: struct({ networkName: S, sourceVip: S, enableDSR: BOOL, rootHnsEndpointName: S, forwardHealthCheckVip: BOOL }),
  detectLocalMode: S,
  detectLocal: struct({ bridgeInterface: S, interfaceNamePrefix: S }),
  clusterCIDR: S,
  nodePortAddresses: { t: 'stringList' },
  oomScoreAdj: INT32_PTR,
  conntrack: struct({
    maxPerCore: INT32_PTR,
    min: INT32_PTR,
    tcpEstablishedTimeout: DUR_PTR,
    tcpCloseWaitTimeout: DUR_PTR,
    tcpBeLiberal: BOOL,
    udpTimeout: DUR,
    udpStreamTimeout: DUR,
  }),
  configSyncPeriod: DUR,
  portRange: S,
  windowsRunAsService: BOOL,
});

/** Fields older upstream versions had, so a stale file gets a useful hint. */
const REMOVED_FIELDS: Record<string, string> = {
  udpIdleTimeout: 'it configured the userspace proxy, which upstream removed',
  resourceContainer: 'upstream removed it',
  'conntrack.max': 'upstream replaced it by conntrack.maxPerCore and conntrack.min',
  'ipvs.masqueradeAll': 'it never existed in v1alpha1; use iptables.masqueradeAll',
};

function zeroOf(spec: Spec): unknown {
  switch (spec.t) {
    case 'string':
      return '';
    case 'quantity':
      return '0';
    case 'bool':
      return spec.ptr ? null : false;
    case 'int32':
    case 'duration':
      return spec.ptr ? null : 0;
    case 'uint32':
    case 'float32':
    case 'flushFrequency':
      return 0;
    case 'stringList':
      return null;
    case 'boolMap':
      return {};
    case 'list':
      return [];
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const [k, s] of Object.entries(spec.fields)) out[k] = zeroOf(s);
      return out;
    }
  }
}


function describe(value: unknown, spec?: Spec): string {
  if (spec && (spec.t === 'duration' || spec.t === 'flushFrequency') && typeof value === 'number') return formatGoDuration(value);
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map || v instanceof Set) return 'a set';
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v)}`;
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return `the boolean ${v}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

// ---------------------------------------------------------------------------
// Decoding.

interface DecodeCtx {
  errors: ConfigProblem[];
  unknown: string[];
}

const QUANTITY_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;

function decodeValue(spec: Spec, v: unknown, path: string, ctx: DecodeCtx): unknown {
  // A JSON null leaves a value at its zero (a pointer at nil).
  if (v === null || v === undefined) return zeroOf(spec);
  const bad = (expected: string): unknown => {
    ctx.errors.push({ field: path, message: `must be ${expected}, got ${typeName(v)}` });
    return zeroOf(spec);
  };
  switch (spec.t) {
    case 'string':
      return typeof v === 'string' ? v : bad('a string');
    case 'bool':
      return typeof v === 'boolean' ? v : bad('true or false');
    case 'int32':
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('an integer');
      if (v < -2147483648 || v > 2147483647) return bad('a 32-bit integer');
      return v;
    case 'uint32':
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('a non-negative integer');
      if (v < 0 || v > 4294967295) return bad('a non-negative 32-bit integer');
      return v;
    case 'float32':
      return typeof v === 'number' && Number.isFinite(v) ? v : bad('a number');
    case 'duration': {
      if (typeof v !== 'string') return bad('a duration string (e.g. "30s", "1m30s")');
      const ms = parseGoDuration(v);
      if (ms === undefined) {
        ctx.errors.push({ field: path, message: `${JSON.stringify(v)} is not a duration (e.g. 30s, 500ms, 1m30s)` });
        return zeroOf(spec);
      }
      return ms;
    }
    case 'flushFrequency': {
      // TimeOrMetaDuration: a duration string, or an integer of nanoseconds.
      if (typeof v === 'number' && Number.isInteger(v)) return v / 1e6;
      if (typeof v !== 'string') return bad('a duration string or an integer number of nanoseconds');
      const ms = parseGoDuration(v);
      if (ms === undefined) {
        ctx.errors.push({ field: path, message: `${JSON.stringify(v)} is not a duration (e.g. 5s)` });
        return 0;
      }
      return ms;
    }
    case 'quantity': {
      const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v : undefined;
      if (text === undefined) return bad('a quantity (e.g. "0", "64Ki")');
      if (!QUANTITY_RE.test(text)) {
        ctx.errors.push({ field: path, message: `${JSON.stringify(text)} is not a quantity (e.g. "0", "64Ki")` });
        return '0';
      }
      return text;
    }
    case 'stringList': {
      if (!Array.isArray(v)) return bad('a list of strings');
      const out: string[] = [];
      v.forEach((item, i) => {
        if (typeof item === 'string') out.push(item);
        else ctx.errors.push({ field: `${path}[${i}]`, message: `must be a string, got ${typeName(item)}` });
      });
      return out;
    }
    case 'boolMap': {
      if (!isPlainObject(v)) return bad('a mapping of names to true or false');
      const out: Record<string, boolean> = {};
      for (const [k, item] of Object.entries(v)) {
        // defineProperty: a gate named "__proto__" must stay a plain key.
        if (typeof item === 'boolean') Object.defineProperty(out, k, { value: item, enumerable: true, writable: true, configurable: true });
        else ctx.errors.push({ field: join(path, k), message: `must be true or false, got ${typeName(item)}` });
      }
      return out;
    }
    case 'list': {
      if (!Array.isArray(v)) return bad('a list');
      return v.map((item, i) => decodeValue(spec.item, item, `${path}[${i}]`, ctx));
    }
    case 'struct': {
      if (!isPlainObject(v)) return bad('a mapping');
      const out = zeroOf(spec) as Record<string, unknown>;
      for (const [k, item] of Object.entries(v)) {
        const fieldSpec = Object.hasOwn(spec.fields, k) ? spec.fields[k] : undefined;
        if (!fieldSpec) {
          ctx.unknown.push(join(path, k));
          continue;
        }
        out[k] = decodeValue(fieldSpec, item, join(path, k), ctx);
      }
      return out;
    }
  }
}

function unknownFieldMessage(field: string): string {
  const removed = Object.hasOwn(REMOVED_FIELDS, field) ? REMOVED_FIELDS[field] : undefined;
  if (removed) return `unknown field (${removed})`;
  // Go's JSON decoding here is case-sensitive: suggest the right spelling.
  const dot = field.lastIndexOf('.');
  const parentPath = dot < 0 ? '' : field.slice(0, dot);
  const key = field.slice(dot + 1);
  let spec: Spec | undefined = ROOT;
  for (const part of parentPath ? parentPath.split('.') : []) {
    spec = spec && spec.t === 'struct' && Object.hasOwn(spec.fields, part) ? spec.fields[part] : undefined;
  }
  if (spec && spec.t === 'struct') {
    const match = Object.keys(spec.fields).find((k) => k.toLowerCase() === key.toLowerCase());
    if (match) return `unknown field (field names are case-sensitive: did you mean ${JSON.stringify(match)}?)`;
  }
  return 'unknown field';
}

function parseYAML(text: string, source: string): unknown {
  let docs;
  try {
    docs = parseAllDocuments(text, {
      version: '1.1',
      merge: true,
      uniqueKeys: true,
      prettyErrors: true,
      // go-yaml v2 resolves neither base-60 numbers nor timestamps.
      customTags: (tags: Tags) =>
        tags.filter((tag) =>
          typeof tag === 'string'
            ? !['intTime', 'floatTime', 'timestamp'].includes(tag)
            : !('format' in tag && tag.format === 'TIME') && tag.tag !== 'tag:yaml.org,2002:timestamp',
        ),
    });
  } catch (err) {
    throw new ConfigError(source, { message: `cannot parse: ${err instanceof Error ? err.message : String(err)}` });
  }
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const what = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
      throw new ConfigError(source, { message: `${where}YAML syntax error: ${what}` });
    }
  }
  const nonEmpty = list.filter((d) => d.contents !== null);
  if (nonEmpty.length > 1) {
    throw new ConfigError(source, { message: `holds ${nonEmpty.length} YAML documents; a KubeProxyConfiguration file holds one` });
  }
  const first = nonEmpty[0];
  if (!first) return null;
  try {
    return first.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(source, { message: `cannot parse: ${err instanceof Error ? err.message : String(err)}` });
  }
}

/**
 * Parses and type-checks a KubeProxyConfiguration (YAML or JSON) without
 * defaulting or validating values: what the file says, with unset fields at
 * their zero value (null for pointers). Throws ConfigError for a syntax error,
 * a wrong apiVersion/kind, a value of the wrong type, or (unless
 * `unknownFields: 'warn'`) an unknown field.
 */
export function decodeKubeProxyConfig(text: string, source: string, options: LoadOptions = {}): { config: KubeProxyConfig; warnings: string[] } {
  const raw = parseYAML(text, source);
  if (!isPlainObject(raw)) {
    throw new ConfigError(source, { message: `must be a ${KUBE_PROXY_KIND} mapping (apiVersion: ${KUBE_PROXY_API_VERSION}), got ${raw === null ? 'an empty file' : typeName(raw)}` });
  }
  const typeProblems: ConfigProblem[] = [];
  if (raw.apiVersion !== KUBE_PROXY_API_VERSION) {
    typeProblems.push({ field: 'apiVersion', message: `must be ${JSON.stringify(KUBE_PROXY_API_VERSION)}, got ${raw.apiVersion === undefined ? 'nothing' : describe(raw.apiVersion)}` });
  }
  if (raw.kind !== KUBE_PROXY_KIND) {
    typeProblems.push({ field: 'kind', message: `must be ${JSON.stringify(KUBE_PROXY_KIND)}, got ${raw.kind === undefined ? 'nothing' : describe(raw.kind)}` });
  }
  if (typeProblems.length > 0) throw new ConfigError(source, typeProblems);

  const ctx: DecodeCtx = { errors: [], unknown: [] };
  const config = decodeValue(ROOT, raw, '', ctx) as KubeProxyConfig;
  const warnings: string[] = [];
  const unknownMode = options.unknownFields ?? 'error';
  for (const field of ctx.unknown) {
    if (unknownMode === 'error') ctx.errors.push({ field, message: unknownFieldMessage(field) });
    else warnings.push(formatProblem(source, { field, message: `${unknownFieldMessage(field)}; ignored, as upstream kube-proxy's lenient decoding does` }));
  }
  if (ctx.errors.length > 0) throw new ConfigError(source, ctx.errors);
  return { config, warnings };
}

// ---------------------------------------------------------------------------
// Defaults.

export const DEFAULT_HEALTHZ_PORT = 10256;
export const DEFAULT_METRICS_PORT = 10249;

/**
 * Upstream's SetDefaults_KubeProxyConfiguration (plus the logging defaults):
 * returns a copy in which every zero/null field that has a default holds it.
 */
export function withDefaults(config: KubeProxyConfig): KubeProxyConfig {
  const c = structuredClone(config);
  if (c.bindAddress === '') c.bindAddress = '0.0.0.0';
  const v6 = parseIP(c.bindAddress)?.family === 'IPv6';
  c.healthzBindAddress = c.healthzBindAddress === '' ? `${v6 ? '[::]' : '0.0.0.0'}:${DEFAULT_HEALTHZ_PORT}` : appendPortIfNeeded(c.healthzBindAddress, DEFAULT_HEALTHZ_PORT);
  c.metricsBindAddress = c.metricsBindAddress === '' ? `${v6 ? '[::1]' : '127.0.0.1'}:${DEFAULT_METRICS_PORT}` : appendPortIfNeeded(c.metricsBindAddress, DEFAULT_METRICS_PORT);
  c.oomScoreAdj ??= -999;
  if (c.iptables.syncPeriod === 0) c.iptables.syncPeriod = 30_000;
  if (c.iptables.minSyncPeriod === 0) c.iptables.minSyncPeriod = 1000;
  c.iptables.masqueradeBit ??= 14;
  c.iptables.localhostNodePorts ??= true;
  if (c.ipvs.syncPeriod === 0) c.ipvs.syncPeriod = 30_000;
  c.nftables.masqueradeBit ??= 14;
  if (c.nftables.syncPeriod === 0) c.nftables.syncPeriod = 30_000;
  if (c.nftables.minSyncPeriod === 0) c.nftables.minSyncPeriod = 1000;
  c.conntrack.maxPerCore ??= 32 * 1024;
  c.conntrack.min ??= 128 * 1024;
  c.conntrack.tcpEstablishedTimeout ??= 24 * 3_600_000;
  c.conntrack.tcpCloseWaitTimeout ??= 3_600_000;
  if (c.configSyncPeriod === 0) c.configSyncPeriod = 15 * 60_000;
  if (c.clientConnection.contentType === '') c.clientConnection.contentType = 'application/vnd.kubernetes.protobuf';
  if (c.clientConnection.qps === 0) c.clientConnection.qps = 5;
  if (c.clientConnection.burst === 0) c.clientConnection.burst = 10;
  if (c.logging.format === '') c.logging.format = 'text';
  if (c.logging.flushFrequency === 0) c.logging.flushFrequency = 5000;
  return c;
}

/** What an empty KubeProxyConfiguration decodes to (every field at its zero value). */
export function emptyKubeProxyConfig(): KubeProxyConfig {
  const c = zeroOf(ROOT) as KubeProxyConfig;
  c.apiVersion = KUBE_PROXY_API_VERSION;
  c.kind = KUBE_PROXY_KIND;
  return c;
}

/** The configuration upstream kube-proxy runs with when the file sets nothing. */
export function defaultKubeProxyConfig(): KubeProxyConfig {
  return withDefaults(emptyKubeProxyConfig());
}

// ---------------------------------------------------------------------------
// Not-implemented fields.

/** Leaf fields kube-proxy-ts honours (see merge.ts); everything else warns when not at its default. */
export const IMPLEMENTED_FIELDS: ReadonlySet<string> = new Set([
  'apiVersion',
  'kind',
  'mode',
  'clusterCIDR',
  'hostnameOverride',
  'healthzBindAddress',
  'metricsBindAddress',
  'clientConnection.kubeconfig',
  'clientConnection.qps',
  'clientConnection.burst',
  'configSyncPeriod',
  'iptables.masqueradeAll',
  'iptables.masqueradeBit',
  'iptables.localhostNodePorts',
  'nodePortAddresses',
  'iptables.syncPeriod',
  'nftables.masqueradeAll',
  'nftables.masqueradeBit',
  'nftables.syncPeriod',
  'nftables.minSyncPeriod',
  'iptables.minSyncPeriod',
  'logging.verbosity',
]);

function reasonFor(field: string): string {
  if (field.startsWith('ipvs.')) return 'only used in ipvs mode, which kube-proxy-ts has not implemented yet; ignored';
  if (field.startsWith('winkernel.') || field === 'windowsRunAsService') return 'Windows-only; ignored';
  if (field.startsWith('conntrack.')) return 'kube-proxy-ts does not tune conntrack yet; ignored';
  if (field === 'detectLocalMode' || field.startsWith('detectLocal.')) return 'not implemented by kube-proxy-ts yet; local traffic is detected with clusterCIDR';
  if (field === 'portRange') return 'unused (upstream ignores it too)';
  return 'not implemented by kube-proxy-ts yet; ignored';
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function notImplementedWarnings(c: KubeProxyConfig, source: string): string[] {
  const defaults = defaultKubeProxyConfig();
  const out: string[] = [];
  const warn = (field: string, message: string): void => void out.push(formatProblem(source, { field, message }));
  const walk = (spec: Spec, value: unknown, def: unknown, path: string): void => {
    if (spec.t === 'struct') {
      for (const [k, s] of Object.entries(spec.fields)) walk(s, (value as Record<string, unknown>)[k], (def as Record<string, unknown>)[k], join(path, k));
      return;
    }
    if (IMPLEMENTED_FIELDS.has(path)) return;
    if (path === 'bindAddress' && isUnspecifiedIP(c.bindAddress)) return;
    if (path === 'detectLocalMode' && (value === '' || value === 'ClusterCIDR')) return;
    if ((spec.t === 'stringList' || spec.t === 'list') && (value === null || (Array.isArray(value) && value.length === 0))) return;
    if (spec.t === 'boolMap') {
      const gates = Object.entries(value as Record<string, boolean>);
      if (gates.length > 0) warn(path, `${gates.map(([k, v]) => `${k}=${v}`).join(', ')}: feature gates are not implemented by kube-proxy-ts yet; ignored`);
      return;
    }
    if (sameValue(value, def)) return;
    warn(path, `${describe(value, spec)} is set, but ${reasonFor(path)}`);
  };
  walk(ROOT, c, defaults, '');

  // clusterCIDR is implemented for IPv4 only so far.
  if (c.clusterCIDR !== '') {
    const r = parseClusterCIDRs(c.clusterCIDR);
  }
  return out;
}

// ---------------------------------------------------------------------------

/**
 * Loads a KubeProxyConfiguration file: decodes it (YAML or JSON), applies
 * upstream's defaults, validates it, and lists one warning per field that is
 * set to a non-default value kube-proxy-ts does not implement. `source` names
 * the file in messages (e.g. `config.conf` or the path given to --config).
 * Throws ConfigError, and nothing else.
 */
export function loadKubeProxyConfig(text: string, source: string, options: LoadOptions = {}): LoadResult {
  try {
    const decoded = decodeKubeProxyConfig(text, source, options);
    const config = withDefaults(decoded.config);
    const problems = validateKubeProxyConfig(config);
    if (problems.length > 0) throw new ConfigError(source, problems);
    return { config, warnings: [...decoded.warnings, ...notImplementedWarnings(config, source)] };
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // Defensive: no input may crash the loader with anything but a ConfigError.
    throw new ConfigError(source, { message: `cannot load: ${err instanceof Error ? err.message : String(err)}` });
  }
}
