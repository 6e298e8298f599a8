import t from 'tap';
import { describeObject, validateEndpointSlice, validateNode, validateService } from '../../src/agent/sources/validate.js';

const svc = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: 'ns', name: 'web' },
  spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...spec },
  ...extra,
});

t.test('a valid LoadBalancer service converts with defaults applied', async (t) => {
  const r = validateService(
    svc({ type: 'LoadBalancer', clusterIPs: ['10.96.0.10'], externalIPs: ['192.0.2.7'], ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, {
      status: { loadBalancer: { ingress: [{ ip: '198.51.100.10' }, { hostname: 'lb.example.org' }] } },
    }),
  );
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.value.clusterIPs, ['10.96.0.10']);
  t.same(r.value.loadBalancerIPs, ['198.51.100.10']);
  t.same(r.value.externalIPs, ['192.0.2.7']);
  t.equal(r.value.ports[0]!.protocol, 'TCP');
  t.equal(r.value.ports[0]!.nodePort, 30080);
  t.equal(r.value.externalTrafficPolicy, 'Cluster');
  t.equal(r.value.sessionAffinityTimeoutSeconds, 10800);
});

t.test('namespace defaults to "default"; headless and ExternalName are recognised', async (t) => {
  const noNs = validateService({ metadata: { name: 'a' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 1 }] } });
  t.ok(noNs.ok && noNs.value.namespace === 'default');
  const headless = validateService(svc({ clusterIP: 'None' }));
  t.ok(headless.ok && headless.value.headless && headless.value.clusterIPs.length === 0);
  const en = validateService(svc({ type: 'ExternalName', clusterIP: undefined, externalName: 'x.example.org' }));
  t.ok(en.ok && en.value.type === 'ExternalName');
});

t.test('IPv6 addresses are normalised', async (t) => {
  const r = validateService(svc({ clusterIP: 'fd00:0:0::10', clusterIPs: ['fd00:0:0::10'] }));
  t.ok(r.ok);
  if (r.ok) t.same(r.value.clusterIPs, ['fd00::10']);
});

const badServices: Array<[string, Record<string, unknown>, RegExp]> = [
  ['bad cluster IP', svc({ clusterIP: '10.96.0.300' }), /spec\.clusterIP.*not a valid IP/],
  ['cluster IP with leading zero', svc({ clusterIP: '10.96.0.010' }), /not a valid IP/],
  ['port out of range', svc({ ports: [{ name: 'a', port: 70000 }] }), /spec\.ports\[0\]\.port.*70000/],
  ['port not a number', svc({ ports: [{ name: 'a', port: '80' }] }), /spec\.ports\[0\]\.port/],
  ['unknown protocol', svc({ ports: [{ name: 'a', port: 80, protocol: 'ICMP' }] }), /protocol.*ICMP/],
  ['lowercase protocol', svc({ ports: [{ name: 'a', port: 80, protocol: 'tcp' }] }), /protocol/],
  ['unnamed port among several', svc({ ports: [{ port: 80 }, { name: 'b', port: 81 }] }), /spec\.ports\[0\]\.name: required/],
  ['duplicate port', svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }), /duplicate/],
  ['bad external IP', svc({ externalIPs: ['nope'] }), /spec\.externalIPs\[0\]/],
  ['bad type', svc({ type: 'Weird' }), /spec\.type/],
  ['bad name', { metadata: { name: 'Bad_Name' }, spec: { clusterIP: '10.96.0.1', ports: [] } }, /metadata\.name/],
  ['comment injection in name', { metadata: { name: 'a" -j ACCEPT' }, spec: { clusterIP: '10.96.0.1', ports: [] } }, /metadata\.name/],
  ['bad source range', svc({ loadBalancerSourceRanges: ['10.0.0.0/33'] }), /loadBalancerSourceRanges\[0\]/],
  ['bad affinity timeout', svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }), /timeoutSeconds/],
  ['spec not an object', { metadata: { name: 'a' }, spec: [] }, /spec: must be an object/],
  ['trafficDistribution not a string', svc({ trafficDistribution: 7 }), /spec\.trafficDistribution: must be a string/],
  ['trafficDistribution with rule text', svc({ trafficDistribution: 'PreferClose -j ACCEPT' }), /spec\.trafficDistribution: .* is not a valid value/],
  ['healthCheckNodePort out of range', svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 70000 }), /spec\.healthCheckNodePort/],
  ['bad traffic policy', svc({ externalTrafficPolicy: 'Nearby' }), /spec\.externalTrafficPolicy/],
];
for (const [what, input, reason] of badServices) {
  t.test(`invalid service: ${what}`, async (t) => {
    const r = validateService(input);
    t.notOk(r.ok, 'rejected');
    if (!r.ok) t.match(r.reason, reason);
  });
}

t.test('traffic distribution, the topology annotations and the health check port are carried', async (t) => {
  const meta = (annotations: Record<string, string>) => ({ metadata: { namespace: 'ns', name: 'web', annotations } });
  const base = { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ name: 'http', port: 80, nodePort: 30080 }] };
  const r = validateService(svc({ ...base, trafficDistribution: 'PreferSameZone' }, meta({ 'service.kubernetes.io/topology-mode': 'Auto' })));
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value.trafficDistribution, 'PreferSameZone');
  t.equal(r.value.topologyMode, 'Auto');
  t.equal(r.value.healthCheckNodePort, 32000);
  t.equal(r.value.externalTrafficPolicy, 'Local');
  for (const v of ['PreferClose', 'PreferSameNode', 'SomethingNewer']) {
    const x = validateService(svc({ trafficDistribution: v }));
    t.ok(x.ok && x.value.trafficDistribution === v, `${v} is kept`);
  }
  const none = validateService(svc({}));
  t.ok(none.ok && none.value.trafficDistribution === undefined && none.value.topologyMode === undefined, 'absent when not set');
  const both = validateService(svc({}, meta({ 'service.kubernetes.io/topology-mode': 'Auto', 'service.kubernetes.io/topology-aware-hints': 'Disabled' })));
  t.ok(both.ok && both.value.topologyMode === 'Disabled', 'the deprecated annotation takes precedence, as upstream');
});

const slice = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { namespace: 'ns', name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }],
  endpoints: [{ addresses: ['10.244.1.2'], nodeName: 'n1' }],
  ...over,
});

t.test('a valid slice: nil conditions mean ready and serving', async (t) => {
  const r = validateEndpointSlice(slice({ metadata: { namespace: 'ns', name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z' } } }));
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value.serviceName, 'web');
  t.same(r.value.endpoints[0]!.conditions, { ready: true, serving: true, terminating: false });
  t.equal(r.value.ports[0]!.protocol, 'TCP');
  t.equal(r.value.triggerTime, Date.parse('2026-01-01T00:00:00Z'));
});

t.test('hints are carried', async (t) => {
  const r = validateEndpointSlice(slice({ endpoints: [{ addresses: ['10.244.1.2'], zone: 'zone-a', hints: { forZones: [{ name: 'zone-a' }, { name: 'zone-b' }], forNodes: [{ name: 'node-1.example' }] } }] }));
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.value.endpoints[0]!.hints, { forZones: ['zone-a', 'zone-b'], forNodes: ['node-1.example'] });
  t.equal(r.value.endpoints[0]!.zone, 'zone-a');
  const none = validateEndpointSlice(slice());
  t.ok(none.ok && none.value.endpoints[0]!.hints.forZones.length === 0 && none.value.endpoints[0]!.hints.forNodes.length === 0);
});

t.test('endpoints share their repeated parts, frozen: one object per condition triple, one "no hints"', async (t) => {
  const ep = (ip: string, conditions: Record<string, boolean>) => ({ addresses: [ip], nodeName: 'n1', conditions });
  const a = validateEndpointSlice(slice({ endpoints: [ep('10.244.1.2', { ready: true }), ep('10.244.1.3', { ready: false, terminating: true })] }));
  const b = validateEndpointSlice(slice({ metadata: { namespace: 'ns', name: 'web-def', labels: { 'kubernetes.io/service-name': 'web' } }, endpoints: [ep('10.244.1.4', { ready: true, serving: true, terminating: false }), ep('10.244.1.5', { ready: false, serving: true, terminating: true })] }));
  t.ok(a.ok && b.ok);
  if (!a.ok || !b.ok) return;
  const [a0, a1] = a.value.endpoints;
  const [b0, b1] = b.value.endpoints;
  t.equal(a0!.conditions, b0!.conditions, 'ready, serving, not terminating: the same object in both slices');
  t.not(a1!.conditions, b1!.conditions, 'serving differs: other objects');
  t.same(a1!.conditions, { ready: false, serving: false, terminating: true }, 'a nil serving falls back to ready');
  t.same(b1!.conditions, { ready: false, serving: true, terminating: true });
  t.equal(a0!.hints, b1!.hints, 'no hints: one shared object');
  t.throws(() => {
    (a0!.conditions as { ready: boolean }).ready = false;
  }, TypeError, 'shared conditions are frozen');
  t.throws(() => a0!.hints.forZones.push('zone-x'), TypeError, 'shared empty hints are frozen');
  t.equal(b0!.conditions.ready, true, 'and stay as they were');
});

t.test('serving defaults to ready when absent', async (t) => {
  const r = validateEndpointSlice(slice({ endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: false, terminating: true } }] }));
  t.ok(r.ok && !r.value.endpoints[0]!.conditions.serving && r.value.endpoints[0]!.conditions.terminating);
});

const badSlices: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no service label', slice({ metadata: { namespace: 'ns', name: 'x' } }), /kubernetes\.io\/service-name/],
  ['bad endpoint address', slice({ endpoints: [{ addresses: ['10.244.1.999'] }] }), /endpoints\[0\]\.addresses\[0\]/],
  ['IPv6 address in an IPv4 slice', slice({ endpoints: [{ addresses: ['fd00::1'] }] }), /not an IPv4 address/],
  ['empty addresses', slice({ endpoints: [{ addresses: [] }] }), /at least one address/],
  ['bad port', slice({ ports: [{ name: 'http', port: 0 }] }), /ports\[0\]\.port/],
  ['bad address type', slice({ addressType: 'IPX' }), /addressType/],
  ['FQDN slice', slice({ addressType: 'FQDN' }), /FQDN/],
  ['ready not a boolean', slice({ endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: 'yes' } }] }), /conditions\.ready/],
  ['zone hint without a name', slice({ endpoints: [{ addresses: ['10.244.1.2'], hints: { forZones: [{}] } }] }), /hints\.forZones\[0\]\.name: required/],
  ['zone hint with a bad name', slice({ endpoints: [{ addresses: ['10.244.1.2'], hints: { forZones: [{ name: 'a b' }] } }] }), /hints\.forZones\[0\]\.name: .*not a valid name/],
  ['node hint not an object', slice({ endpoints: [{ addresses: ['10.244.1.2'], hints: { forNodes: ['node-1'] } }] }), /hints\.forNodes\[0\]: must be an object/],
  ['hints not a list', slice({ endpoints: [{ addresses: ['10.244.1.2'], hints: { forZones: { name: 'a' } } }] }), /hints\.forZones: must be a list/],
];
for (const [what, input, reason] of badSlices) {
  t.test(`invalid slice: ${what}`, async (t) => {
    const r = validateEndpointSlice(input);
    t.notOk(r.ok, 'rejected');
    if (!r.ok) t.match(r.reason, reason);
  });
}

t.test('node facts', async (t) => {
  const r = validateNode({ metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'a' } }, spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '203.0.113.1' }, { type: 'Hostname', address: 'node-1' }] } });
  t.ok(r.ok);
  if (r.ok) t.same(r.value, { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'a' }, addresses: ['203.0.113.1'], podCIDRs: ['10.244.1.0/24'], zone: 'a' });
  const unlabelled = validateNode({ metadata: { name: 'n' } });
  t.ok(unlabelled.ok && unlabelled.value.zone === undefined, 'no zone label: no zone');
  const bad = validateNode({ metadata: { name: 'n' }, spec: { podCIDRs: ['10.244.1.0'] } });
  t.ok(!bad.ok && /podCIDRs\[0\]/.test(bad.reason));
});

t.test('describeObject names objects even when garbage', async (t) => {
  t.equal(describeObject({ kind: 'Service', metadata: { name: 'a' } }), 'Service default/a');
  t.equal(describeObject({ kind: 'Node', metadata: { name: 'n1' } }), 'Node n1');
  t.equal(describeObject(42), 'object');
});
