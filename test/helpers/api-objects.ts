/** API-shaped objects (as the API server serves them) for tests that drive the agent through an API server. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { FakeApiServer, ResourceName } from './fake-apiserver.js';

export interface ApiServiceOptions {
  namespace?: string;
  type?: string;
  port?: number;
  protocol?: string;
  nodePort?: number;
  labels?: Record<string, string>;
}

export function apiService(name: string, clusterIP: string, o: ApiServiceOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: o.namespace ?? 'demo', name, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      type: o.type ?? 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [{ name: 'http', protocol: o.protocol ?? 'TCP', port: o.port ?? 80, targetPort: 8080, ...(o.nodePort ? { nodePort: o.nodePort } : {}) }],
    },
  };
}

export function apiSlice(service: string, ips: string[], o: { namespace?: string; name?: string; port?: number; protocol?: string; labels?: Record<string, string>; triggerTime?: string } = {}): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: o.namespace ?? 'demo',
      name: o.name ?? `${service}-abcde`,
      labels: { 'kubernetes.io/service-name': service, ...(o.labels ?? {}) },
      ...(o.triggerTime ? { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': o.triggerTime } } : {}),
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: o.protocol ?? 'TCP', port: o.port ?? 8080 }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1' })),
  };
}

export function apiNode(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } }, ...extra };
}

const RESOURCE_OF: Record<string, ResourceName> = { Service: 'services', EndpointSlice: 'endpointslices', Node: 'nodes' };

/** Loads every object of a manifests directory (e.g. examples/) into the fake API server. */
export function loadDirInto(api: FakeApiServer, dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir).filter((x) => /\.ya?ml$/.test(x)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const o = doc.toJS() as { kind?: string } | null;
      const r = o?.kind ? RESOURCE_OF[o.kind] : undefined;
      if (!o || !r) continue;
      api.apply(r, o);
      n++;
    }
  }
  return n;
}
