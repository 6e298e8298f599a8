/**
 * The synthetic cluster (synthetic-cluster.ts, the agent's internal model) as
 * the API objects an API server serves: v1 Service, discovery.k8s.io/v1
 * EndpointSlice, v1 Node. The agent's own validation (sources/validate.ts)
 * turns them back into the same model (test/unit/bench-latency.test.ts).
 */
import type { EndpointSlice, NodeInfo, Service } from '../agent/model/types.js';
import { SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION } from '../agent/sources/validate.js';

export type ApiObject = Record<string, unknown> & { metadata: Record<string, unknown> };

export function apiServiceOf(s: Service): ApiObject {
  const spec: Record<string, unknown> = {
    type: s.type,
    clusterIP: s.clusterIPs[0],
    clusterIPs: s.clusterIPs,
    ports: s.ports.map((p) => ({
      ...(p.name !== '' ? { name: p.name } : {}),
      protocol: p.protocol,
      port: p.port,
      targetPort: p.targetPort,
      ...(p.nodePort ? { nodePort: p.nodePort } : {}),
    })),
    sessionAffinity: s.sessionAffinity,
    internalTrafficPolicy: s.internalTrafficPolicy,
  };
  if (s.sessionAffinity === 'ClientIP') spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: s.sessionAffinityTimeoutSeconds } };
  if (s.type === 'NodePort' || s.type === 'LoadBalancer') spec.externalTrafficPolicy = s.externalTrafficPolicy;
  if (s.externalIPs.length > 0) spec.externalIPs = s.externalIPs;
  if (s.loadBalancerSourceRanges.length > 0) spec.loadBalancerSourceRanges = s.loadBalancerSourceRanges;
  if (s.healthCheckNodePort) spec.healthCheckNodePort = s.healthCheckNodePort;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: s.namespace, name: s.name },
    spec,
    ...(s.type === 'LoadBalancer' ? { status: { loadBalancer: { ingress: s.loadBalancerIPs.map((ip) => ({ ip })) } } } : {}),
  };
}

/** The slice; with `triggerTime`, annotated with endpoints.kubernetes.io/last-change-trigger-time (RFC 3339, milliseconds). */
export function apiSliceOf(s: EndpointSlice, triggerTime?: Date): ApiObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: s.namespace,
      name: s.name,
      labels: { [SERVICE_NAME_LABEL]: s.serviceName, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ...(triggerTime ? { annotations: { [TRIGGER_TIME_ANNOTATION]: triggerTime.toISOString() } } : {}),
    },
    addressType: s.addressType,
    endpoints: s.endpoints.map((e) => ({
      addresses: e.addresses,
      conditions: e.conditions,
      nodeName: e.nodeName,
      ...(e.zone !== '' ? { zone: e.zone } : {}),
      ...(e.hints.forZones.length > 0 || e.hints.forNodes.length > 0
        ? { hints: { forZones: e.hints.forZones.map((name) => ({ name })), forNodes: e.hints.forNodes.map((name) => ({ name })) } }
        : {}),
    })),
    ports: s.ports.map((p) => ({ ...(p.name !== '' ? { name: p.name } : {}), protocol: p.protocol, port: p.port })),
  };
}

export function apiNodeOf(n: NodeInfo): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: n.labels },
    spec: { podCIDR: n.podCIDRs[0], podCIDRs: n.podCIDRs },
    status: { addresses: n.addresses.map((address) => ({ type: 'InternalIP', address })) },
  };
}
