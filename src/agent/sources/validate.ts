/**
 * Validation and conversion of API objects (Service, EndpointSlice, Node) into
 * the internal model. Every source (manifests directory, API server) calls
 * these at the edge; an object that fails is rejected whole with a reason
 * that names the offending field, and never reaches a backend.
 */
import { parseCIDR, parseIP } from '../util/addr.js';
import type {
  EndpointSlice,
  IPFamily,
  NodeInfo,
  Protocol,
  TrafficDistribution,
  Service,
  ServicePortSpec,
  ServiceType,
  SliceEndpoint,
  SlicePort,
  TrafficPolicy,
} from '../model/types.js';
import { ZONE_LABEL } from '../model/types.js';
import { NO_HINTS, sharedConditions, sharedName } from '../model/shared.js';

export type Validated<T> = { ok: true; value: T } | { ok: false; reason: string };

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
export const TOPOLOGY_MODE_ANNOTATION = 'service.kubernetes.io/topology-mode';
/** Deprecated since 1.27; takes precedence over topology-mode when both are set, as upstream. */
export const TOPOLOGY_AWARE_HINTS_ANNOTATION = 'service.kubernetes.io/topology-aware-hints';

class Invalid extends Error {}

function fail(reason: string): never {
  throw new Invalid(reason);
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, field: string): Obj {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) fail(`${field}: must be an object`);
  return v;
}

function arr(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(`${field}: must be a list`);
  return v;
}

function str(v: unknown, field: string, def = ''): string {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'string') fail(`${field}: must be a string`);
  return v;
}

function bool(v: unknown, field: string, def: boolean): boolean {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') fail(`${field}: must be true or false`);
  return v;
}

function port(v: unknown, field: string, allowZero = false): number {
  if (v === undefined || v === null) {
    if (allowZero) return 0;
    fail(`${field}: required`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    fail(`${field}: ${JSON.stringify(v)} is not a valid port number (1-65535)`);
  }
  return v;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// IANA_SVC_NAME-ish, as allowed for port names (lowercase alphanumerics and '-').
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function dnsLabel(v: unknown, field: string): string {
  const s = str(v, field);
  if (s === '') fail(`${field}: required`);
  if (s.length > 63 || !DNS_LABEL.test(s)) fail(`${field}: ${JSON.stringify(s)} is not a valid DNS label`);
  return s;
}

function dnsSubdomain(v: unknown, field: string): string {
  const s = str(v, field);
  if (s === '') fail(`${field}: required`);
  if (s.length > 253 || !DNS_SUBDOMAIN.test(s)) fail(`${field}: ${JSON.stringify(s)} is not a valid DNS subdomain`);
  return s;
}

function protocol(v: unknown, field: string): Protocol {
  const s = str(v, field, 'TCP');
  if (s !== 'TCP' && s !== 'UDP' && s !== 'SCTP') fail(`${field}: unsupported protocol ${JSON.stringify(s)} (TCP, UDP or SCTP)`);
  return s;
}

function ip(v: unknown, field: string): { address: string; family: IPFamily } {
  const parsed = parseIP(v);
  if (!parsed) fail(`${field}: ${JSON.stringify(v)} is not a valid IP address`);
  return parsed;
}

function portName(v: unknown, field: string): string {
  const s = str(v, field);
  if (s !== '' && (s.length > 63 || !PORT_NAME.test(s))) fail(`${field}: ${JSON.stringify(s)} is not a valid port name`);
  return s;
}

function oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[], def: T): T {
  const s = str(v, field, def);
  if (s === '') return def;
  if (!(allowed as readonly string[]).includes(s)) fail(`${field}: ${JSON.stringify(s)} is not one of ${allowed.join(', ')}`);
  return s as T;
}

function metadata(o: Obj): { namespace: string; name: string; labels: Record<string, string>; annotations: Record<string, string> } {
  const md = obj(o.metadata, 'metadata');
  const name = str(md.name, 'metadata.name');
  const namespace = str(md.namespace, 'metadata.namespace', 'default') || 'default';
  dnsLabel(namespace, 'metadata.namespace');
  const labels = stringMap(md.labels, 'metadata.labels');
  const annotations = stringMap(md.annotations, 'metadata.annotations');
  return { namespace, name, labels, annotations };
}

function stringMap(v: unknown, field: string): Record<string, string> {
  const m = obj(v, field);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(m)) out[k] = str(val, `${field}[${k}]`);
  return out;
}

function guard<T>(fn: () => T): Validated<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    throw err;
  }
}

/** `Kind namespace/name` of any object, for log lines; tolerant of garbage. */
export function describeObject(o: unknown): string {
  if (!isObj(o)) return 'object';
  const kind = typeof o.kind === 'string' ? o.kind : 'object';
  const md = isObj(o.metadata) ? o.metadata : {};
  const name = typeof md.name === 'string' ? md.name : '<unnamed>';
  const ns = typeof md.namespace === 'string' && md.namespace !== '' ? md.namespace : kind === 'Node' ? '' : 'default';
  return ns === '' ? `${kind} ${name}` : `${kind} ${ns}/${name}`;
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const POLICIES = ['Cluster', 'Local'] as const;

export function validateService(input: unknown): Validated<Service> {
  return guard(() => {
    const o = obj(input, 'object');
    const md = metadata(o);
    const name = dnsLabel(md.name, 'metadata.name');
    const spec = obj(o.spec, 'spec');
    const status = obj(o.status, 'status');
    const type: ServiceType = oneOf(spec.type, 'spec.type', SERVICE_TYPES, 'ClusterIP');

    const rawIPs = arr(spec.clusterIPs, 'spec.clusterIPs');
    const primary = str(spec.clusterIP, 'spec.clusterIP');
    const ipTexts = rawIPs.length > 0 ? rawIPs.map((v, i) => str(v, `spec.clusterIPs[${i}]`)) : primary ? [primary] : [];
    const headless = ipTexts.length > 0 && ipTexts[0] === 'None';
    const clusterIPs: string[] = [];
    if (type !== 'ExternalName' && !headless) {
      ipTexts.forEach((t, i) => clusterIPs.push(ip(t, rawIPs.length > 0 ? `spec.clusterIPs[${i}]` : 'spec.clusterIP').address));
      if (primary && primary !== 'None' && clusterIPs.length > 0 && ip(primary, 'spec.clusterIP').address !== clusterIPs[0]) {
        fail('spec.clusterIP: must equal spec.clusterIPs[0]');
      }
    }

    const ports: ServicePortSpec[] = [];
    const seen = new Set<string>();
    const rawPorts = arr(spec.ports, 'spec.ports');
    rawPorts.forEach((rp, i) => {
      const f = `spec.ports[${i}]`;
      const p = obj(rp, f);
      const pn = portName(p.name, `${f}.name`);
      if (pn === '' && rawPorts.length > 1) fail(`${f}.name: required when a service has more than one port`);
      const proto = protocol(p.protocol, `${f}.protocol`);
      const key = `${pn}/${proto}`;
      if (seen.has(key)) fail(`${f}: duplicate port name ${JSON.stringify(pn)} for ${proto}`);
      seen.add(key);
      const tp = p.targetPort;
      let targetPort: number | string;
      if (tp === undefined || tp === null) targetPort = port(p.port, `${f}.port`);
      else if (typeof tp === 'number') targetPort = port(tp, `${f}.targetPort`);
      else targetPort = str(tp, `${f}.targetPort`);
      ports.push({
        name: pn,
        protocol: proto,
        port: port(p.port, `${f}.port`),
        nodePort: type === 'NodePort' || type === 'LoadBalancer' ? port(p.nodePort, `${f}.nodePort`, true) : 0,
        targetPort,
      });
    });

    const externalIPs = arr(spec.externalIPs, 'spec.externalIPs').map((v, i) => ip(v, `spec.externalIPs[${i}]`).address);
    const loadBalancerIPs: string[] = [];
    if (type === 'LoadBalancer') {
      const lb = obj(status.loadBalancer, 'status.loadBalancer');
      arr(lb.ingress, 'status.loadBalancer.ingress').forEach((ing, i) => {
        const g = obj(ing, `status.loadBalancer.ingress[${i}]`);
        // An ingress entry may carry only a hostname; kube-proxy programs IPs only.
        if (g.ip !== undefined && g.ip !== null && g.ip !== '') {
          // ipMode Proxy means the load balancer delivers to the node itself: no rule for that IP.
          if (str(g.ipMode, `status.loadBalancer.ingress[${i}].ipMode`, 'VIP') === 'Proxy') return;
          loadBalancerIPs.push(ip(g.ip, `status.loadBalancer.ingress[${i}].ip`).address);
        }
      });
    }
    const loadBalancerSourceRanges = arr(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges').map((v, i) => {
      const c = parseCIDR(typeof v === 'string' ? v.trim() : v);
      if (!c) fail(`spec.loadBalancerSourceRanges[${i}]: ${JSON.stringify(v)} is not a valid CIDR`);
      return c.cidr;
    });
    const affinity = oneOf(spec.sessionAffinity, 'spec.sessionAffinity', ['None', 'ClientIP'] as const, 'None');
    let timeout = 10800;
    const sac = obj(spec.sessionAffinityConfig, 'spec.sessionAffinityConfig');
    const cip = obj(sac.clientIP, 'spec.sessionAffinityConfig.clientIP');
    if (cip.timeoutSeconds !== undefined && cip.timeoutSeconds !== null) {
      const t = cip.timeoutSeconds;
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 86400) {
        fail('spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be an integer from 1 to 86400');
      }
      timeout = t;
    }
    const etp: TrafficPolicy = oneOf(spec.externalTrafficPolicy, 'spec.externalTrafficPolicy', POLICIES, 'Cluster');
    const itp: TrafficPolicy = oneOf(spec.internalTrafficPolicy, 'spec.internalTrafficPolicy', POLICIES, 'Cluster');
    const hc = port(spec.healthCheckNodePort, 'spec.healthCheckNodePort', true);
    const trafficDistribution = trafficDistributionOf(spec.trafficDistribution);
    const topologyMode = md.annotations[TOPOLOGY_AWARE_HINTS_ANNOTATION] ?? md.annotations[TOPOLOGY_MODE_ANNOTATION] ?? '';
    return {
      namespace: md.namespace,
      name,
      type,
      clusterIPs,
      headless,
      externalIPs,
      loadBalancerIPs,
      loadBalancerSourceRanges,
      externalTrafficPolicy: etp,
      internalTrafficPolicy: itp,
      sessionAffinity: affinity,
      sessionAffinityTimeoutSeconds: timeout,
      healthCheckNodePort: hc,
      ports,
      ...(trafficDistribution !== '' ? { trafficDistribution } : {}),
      ...(topologyMode !== '' ? { topologyMode } : {}),
    };
  });
}

const TRAFFIC_DISTRIBUTION = /^[A-Za-z][A-Za-z0-9]{0,62}$/;

/**
 * `spec.trafficDistribution`: a string. Values other than the known ones
 * (PreferClose, PreferSameZone, PreferSameNode) are kept, not refused: a newer
 * API server may add values, and the field only reaches kube-proxy through the
 * hints the EndpointSlice controller writes. Anything that is not a plain
 * identifier is refused.
 */
function trafficDistributionOf(v: unknown): TrafficDistribution {
  const s = str(v, 'spec.trafficDistribution');
  if (s !== '' && !TRAFFIC_DISTRIBUTION.test(s)) fail(`spec.trafficDistribution: ${JSON.stringify(s)} is not a valid value`);
  return s;
}

/** Label-value syntax, as the API server requires of zone and node names in hints. */
const HINT_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$/;

function hintNames(v: unknown, field: string): string[] {
  return arr(v, field).map((z, k) => {
    const f = `${field}[${k}].name`;
    const name = str(obj(z, `${field}[${k}]`).name, f);
    if (name === '') fail(`${f}: required`);
    if (!HINT_NAME.test(name)) fail(`${f}: ${JSON.stringify(name)} is not a valid name`);
    return name;
  });
}

export function validateEndpointSlice(input: unknown): Validated<EndpointSlice> {
  return guard(() => {
    const o = obj(input, 'object');
    const md = metadata(o);
    const name = dnsSubdomain(md.name, 'metadata.name');
    const serviceName = md.labels[SERVICE_NAME_LABEL];
    if (!serviceName) fail(`metadata.labels: missing ${SERVICE_NAME_LABEL}`);
    dnsLabel(serviceName, `metadata.labels[${SERVICE_NAME_LABEL}]`);
    const at = str(o.addressType, 'addressType');
    if (at !== 'IPv4' && at !== 'IPv6' && at !== 'FQDN') fail(`addressType: ${JSON.stringify(at)} is not IPv4, IPv6 or FQDN`);
    if (at === 'FQDN') fail('addressType: FQDN slices are not proxied');
    const addressType: IPFamily = at;
    const endpoints: SliceEndpoint[] = arr(o.endpoints, 'endpoints').map((re, i) => {
      const f = `endpoints[${i}]`;
      const e = obj(re, f);
      const addrs = arr(e.addresses, `${f}.addresses`);
      if (addrs.length === 0) fail(`${f}.addresses: at least one address is required`);
      const addresses = addrs.map((a, j) => {
        const parsed = ip(a, `${f}.addresses[${j}]`);
        if (parsed.family !== addressType) fail(`${f}.addresses[${j}]: ${parsed.address} is not an ${addressType} address`);
        return parsed.address;
      });
      const c = obj(e.conditions, `${f}.conditions`);
      // Upstream: a nil ready means ready; nil serving falls back to ready.
      const ready = bool(c.ready, `${f}.conditions.ready`, true);
      const serving = bool(c.serving, `${f}.conditions.serving`, ready);
      const terminating = bool(c.terminating, `${f}.conditions.terminating`, false);
      const hints = obj(e.hints, `${f}.hints`);
      const forZones = hintNames(hints.forZones, `${f}.hints.forZones`);
      const forNodes = hintNames(hints.forNodes, `${f}.hints.forNodes`);
      return {
        addresses,
        conditions: sharedConditions(ready, serving, terminating),
        nodeName: sharedName(str(e.nodeName, `${f}.nodeName`)),
        zone: sharedName(str(e.zone, `${f}.zone`)),
        hints: forZones.length === 0 && forNodes.length === 0 ? NO_HINTS : { forZones, forNodes },
      };
    });
    const ports: SlicePort[] = arr(o.ports, 'ports').map((rp, i) => {
      const p = obj(rp, `ports[${i}]`);
      return { name: portName(p.name, `ports[${i}].name`), protocol: protocol(p.protocol, `ports[${i}].protocol`), port: port(p.port, `ports[${i}].port`) };
    });
    const trigger = md.annotations[TRIGGER_TIME_ANNOTATION];
    const triggerTime = trigger ? Date.parse(trigger) : NaN;
    return {
      namespace: md.namespace,
      name,
      serviceName,
      addressType,
      endpoints,
      ports,
      ...(Number.isFinite(triggerTime) ? { triggerTime } : {}),
    };
  });
}

export function validateNode(input: unknown): Validated<NodeInfo> {
  return guard(() => {
    const o = obj(input, 'object');
    const md = obj(o.metadata, 'metadata');
    const name = dnsSubdomain(md.name, 'metadata.name');
    const labels = stringMap(md.labels, 'metadata.labels');
    const spec = obj(o.spec, 'spec');
    const status = obj(o.status, 'status');
    const addresses: string[] = [];
    arr(status.addresses, 'status.addresses').forEach((ra, i) => {
      const a = obj(ra, `status.addresses[${i}]`);
      const t = str(a.type, `status.addresses[${i}].type`);
      if (t === 'InternalIP' || t === 'ExternalIP') addresses.push(ip(a.address, `status.addresses[${i}].address`).address);
    });
    const podCIDRs = arr(spec.podCIDRs, 'spec.podCIDRs').map((c, i) => {
      const p = parseCIDR(c);
      if (!p) fail(`spec.podCIDRs[${i}]: ${JSON.stringify(c)} is not a valid CIDR`);
      return p.cidr;
    });
    const zone = labels[ZONE_LABEL] ?? '';
    return { name, labels, addresses, podCIDRs, ...(zone !== '' ? { zone } : {}) };
  });
}
