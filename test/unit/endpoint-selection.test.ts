import t from 'tap';
import { categorizeEndpoints, topologyModeFromHints, usesClusterEndpoints } from '../../src/agent/model/endpoint-selection.js';
import type { NodeTopology } from '../../src/agent/model/endpoint-selection.js';
import { endpoint, onlyPort, service, slice, snapshotOf } from '../helpers/model.js';
import type { EpSpec } from '../helpers/model.js';

const ips = (eps: { address: string }[]): string[] => eps.map((e) => e.address);

function categorize(eps: EpSpec[], over: Parameters<typeof service>[0] = { name: 'web' }) {
  return categorizeEndpoints(onlyPort(snapshotOf([service(over)], [slice(over.name, eps)])));
}

t.test('ready endpoints are used; not-ready ones are not', async (t) => {
  const c = categorize([{ ip: '10.244.1.2' }, { ip: '10.244.1.3', ready: false }]);
  t.same(ips(c.clusterEndpoints), ['10.244.1.2']);
  t.ok(c.hasAnyEndpoints);
});

t.test('serving+terminating endpoints are used only when no endpoint is ready', async (t) => {
  const withReady = categorize([{ ip: '10.244.1.2' }, { ip: '10.244.1.3', ready: false, serving: true, terminating: true }]);
  t.same(ips(withReady.clusterEndpoints), ['10.244.1.2']);
  const fallback = categorize([
    { ip: '10.244.1.3', ready: false, serving: true, terminating: true },
    { ip: '10.244.1.4', ready: false, serving: false, terminating: true },
  ]);
  t.same(ips(fallback.clusterEndpoints), ['10.244.1.3']);
});

t.test('no usable endpoint: nothing, and hasAnyEndpoints is false', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', ready: false, serving: false }]);
  t.same(c.clusterEndpoints, []);
  t.notOk(c.hasAnyEndpoints);
});

t.test('internalTrafficPolicy=Local uses only this node\'s endpoints', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', node: 'node-1' }, { ip: '10.244.2.2', node: 'node-2' }], { name: 'web', internalTrafficPolicy: 'Local' });
  t.same(ips(c.localEndpoints), ['10.244.1.2']);
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2']);
  t.same(c.clusterEndpoints, []);
});

t.test('externalTrafficPolicy=Local on a NodePort keeps cluster endpoints for internal traffic', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', node: 'node-1' }, { ip: '10.244.2.2', node: 'node-2' }], {
    name: 'web',
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }],
  });
  t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
  t.same(ips(c.localEndpoints), ['10.244.1.2']);
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2', '10.244.2.2']);
});

t.test('slices are merged, de-duplicated (ready copy wins) and matched by port name', async (t) => {
  const svc = service({ name: 'web' });
  const a = slice('web', [{ ip: '10.244.1.3' }, { ip: '10.244.1.2', ready: false }], { name: 'web-a' });
  const b = slice('web', [{ ip: '10.244.1.2' }, { ip: '10.244.1.10' }], { name: 'web-b' });
  const other = slice('web', [{ ip: '10.244.9.9' }], { name: 'web-c', ports: [{ name: 'metrics', protocol: 'TCP', port: 9090 }] });
  const sp = onlyPort(snapshotOf([svc], [a, b, other]));
  t.same(sp.endpoints.map((e) => `${e.address}:${e.port}:${e.ready}`), ['10.244.1.2:8080:true', '10.244.1.3:8080:true', '10.244.1.10:8080:true']);
});

// --- traffic policies, as upstream's CategorizeEndpoints -------------------------------

const nodePortSvc = (over: Partial<Parameters<typeof service>[0]> = {}) => ({
  name: 'web',
  type: 'NodePort' as const,
  ports: [{ name: 'http', protocol: 'TCP' as const, port: 80, nodePort: 30080, targetPort: 8080 }],
  ...over,
});

t.test('iTP Local on an externally reachable service still has cluster endpoints (short-circuit of external traffic)', async (t) => {
  const c = categorize([{ ip: '10.244.1.2' }, { ip: '10.244.2.2', node: 'node-2' }], nodePortSvc({ internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local' }));
  t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
  t.same(ips(c.localEndpoints), ['10.244.1.2']);
  t.ok(usesClusterEndpoints(onlyPort(snapshotOf([service(nodePortSvc({ internalTrafficPolicy: 'Local' }))], []))));
  t.notOk(usesClusterEndpoints(onlyPort(snapshotOf([service({ name: 'web', internalTrafficPolicy: 'Local' })], []))));
});

t.test('Local policy with endpoints only elsewhere: none here, but the service has endpoints (DROP, not REJECT)', async (t) => {
  const c = categorize([{ ip: '10.244.2.2', node: 'node-2' }], { name: 'web', internalTrafficPolicy: 'Local' });
  t.same(c.localEndpoints, []);
  t.ok(c.hasAnyEndpoints);
  const none = categorize([{ ip: '10.244.2.2', node: 'node-2', ready: false, serving: false }], { name: 'web', internalTrafficPolicy: 'Local' });
  t.notOk(none.hasAnyEndpoints);
  const terminatingElsewhere = categorize([{ ip: '10.244.2.2', node: 'node-2', ready: false, serving: true, terminating: true }], { name: 'web', internalTrafficPolicy: 'Local' });
  t.ok(terminatingElsewhere.hasAnyEndpoints, 'a serving terminating endpoint anywhere counts');
});

t.test('terminating fallback is decided separately for Cluster and Local', async (t) => {
  const c = categorize(
    [
      { ip: '10.244.1.2', ready: false, serving: true, terminating: true },
      { ip: '10.244.1.3', ready: false, serving: false, terminating: true },
      { ip: '10.244.2.2', node: 'node-2' },
    ],
    nodePortSvc({ externalTrafficPolicy: 'Local' }),
  );
  t.same(ips(c.clusterEndpoints), ['10.244.2.2'], 'cluster: a ready endpoint exists, terminating ones unused');
  t.same(ips(c.localEndpoints), ['10.244.1.2'], 'local: no ready one here, so the serving terminating one');
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2', '10.244.2.2'], 'both are reachable from this node');
});

// --- topology ------------------------------------------------------------------------

const ZA: NodeTopology = { nodeName: 'node-1', zone: 'zone-a' };

function topo(eps: EpSpec[], node: NodeTopology = ZA, over: Parameters<typeof service>[0] = { name: 'web' }) {
  return categorizeEndpoints(onlyPort(snapshotOf([service(over)], [slice(over.name, eps)])), node);
}

const hinted: EpSpec[] = [
  { ip: '10.244.1.2', forZones: ['zone-a'] },
  { ip: '10.244.2.2', node: 'node-2', forZones: ['zone-a'] },
  { ip: '10.244.3.2', node: 'node-3', forZones: ['zone-b'] },
];

t.test('zone hints: endpoints hinted for this node\'s zone', async (t) => {
  const c = topo(hinted);
  t.equal(c.topologyMode, 'PreferSameZone');
  t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
  t.same(ips(topo(hinted, { nodeName: 'node-3', zone: 'zone-b' }).clusterEndpoints), ['10.244.3.2']);
});

t.test('zone hints are ignored (every endpoint) when ...', async (t) => {
  const all = ['10.244.1.2', '10.244.2.2', '10.244.3.2'];
  t.same(ips(topo(hinted, { nodeName: 'node-1', zone: 'zone-c' }).clusterEndpoints), all, 'no endpoint is hinted for this zone');
  t.same(ips(topo(hinted, { nodeName: 'node-1', zone: '' }).clusterEndpoints), all, 'the node has no zone label');
  t.same(ips(categorizeEndpoints(onlyPort(snapshotOf([service({ name: 'web' })], [slice('web', hinted)]))).clusterEndpoints), all, 'no node facts given');
  const oneUnhinted = [...hinted.slice(0, 2), { ip: '10.244.3.2', node: 'node-3' }];
  const c = topo(oneUnhinted);
  t.equal(c.topologyMode, '');
  t.same(ips(c.clusterEndpoints), all, 'a ready endpoint lacks a hint');
});

t.test('endpoints that are not ready do not need hints', async (t) => {
  const c = topo([...hinted, { ip: '10.244.4.2', node: 'node-4', ready: false }]);
  t.equal(c.topologyMode, 'PreferSameZone');
  t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
});

t.test('node hints come first, then zone hints', async (t) => {
  const eps: EpSpec[] = [
    { ip: '10.244.1.2', forZones: ['zone-a'], forNodes: ['node-1'] },
    { ip: '10.244.2.2', node: 'node-2', forZones: ['zone-a'], forNodes: ['node-2'] },
    { ip: '10.244.3.2', node: 'node-3', forZones: ['zone-b'], forNodes: ['node-3'] },
  ];
  const same = topo(eps);
  t.equal(same.topologyMode, 'PreferSameNode');
  t.same(ips(same.clusterEndpoints), ['10.244.1.2']);
  const otherNode = topo(eps, { nodeName: 'node-9', zone: 'zone-a' });
  t.equal(otherNode.topologyMode, 'PreferSameZone', 'no endpoint for this node: zone hints');
  t.same(ips(otherNode.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
  const gateOff = topo(eps, { ...ZA, sameNodeHints: false });
  t.equal(gateOff.topologyMode, 'PreferSameZone', 'node hints switched off');
  const partial = topo([eps[0]!, { ...eps[1]!, forNodes: [] }, eps[2]!]);
  t.equal(partial.topologyMode, 'PreferSameZone', 'an endpoint without a node hint: zone hints');
});

t.test('terminating fallback ignores topology', async (t) => {
  const c = topo([
    { ip: '10.244.2.2', node: 'node-2', ready: false, serving: true, terminating: true, forZones: ['zone-b'] },
    { ip: '10.244.3.2', node: 'node-3', ready: false, serving: true, terminating: true, forZones: ['zone-b'] },
  ]);
  t.same(ips(c.clusterEndpoints), ['10.244.2.2', '10.244.3.2']);
});

t.test('topology narrows the Cluster endpoints only; Local endpoints stay reachable', async (t) => {
  const eps: EpSpec[] = [
    { ip: '10.244.1.2', forZones: ['zone-b'] },
    { ip: '10.244.2.2', node: 'node-2', forZones: ['zone-a'] },
  ];
  const c = topo(eps, ZA, nodePortSvc({ externalTrafficPolicy: 'Local' }));
  t.same(ips(c.clusterEndpoints), ['10.244.2.2']);
  t.same(ips(c.localEndpoints), ['10.244.1.2'], 'the local endpoint serves external traffic though hinted elsewhere');
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2', '10.244.2.2']);
  const itp = topo(eps, ZA, { name: 'web', internalTrafficPolicy: 'Local' });
  t.same(ips(itp.localEndpoints), ['10.244.1.2'], 'iTP Local: hints do not apply');
});

t.test('hints alone decide, whatever trafficDistribution or the topology annotation say (as upstream since 1.33)', async (t) => {
  for (const over of [{ trafficDistribution: 'PreferClose' }, { topologyMode: 'Disabled' }, {}]) {
    const c = topo(hinted, ZA, { name: 'web', ...over });
    t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2'], JSON.stringify(over));
  }
});

t.test('topologyModeFromHints directly', async (t) => {
  const ep = (zoneHints?: string[], nodeHints?: string[], ready = true) => endpoint('10.0.0.1', { ready, ...(zoneHints ? { zoneHints } : {}), ...(nodeHints ? { nodeHints } : {}) });
  t.equal(topologyModeFromHints([], ZA), '');
  t.equal(topologyModeFromHints([ep(['zone-a'])], ZA), 'PreferSameZone');
  t.equal(topologyModeFromHints([ep(['zone-a'], ['node-1'])], ZA), 'PreferSameNode');
  t.equal(topologyModeFromHints([ep(['zone-a']), ep(undefined, undefined, false)], ZA), 'PreferSameZone');
  t.equal(topologyModeFromHints([ep(['zone-a']), ep()], ZA), '');
});

// --- the model carries what selection and rendering need --------------------------------

t.test('endpoints carry their slice hints; ports carry trafficDistribution and the topology annotation', async (t) => {
  const sp = onlyPort(snapshotOf([service({ name: 'web', trafficDistribution: 'PreferSameZone', topologyMode: 'Auto' })], [slice('web', [{ ip: '10.244.1.2', zone: 'zone-a', forZones: ['zone-a', 'zone-b'], forNodes: ['node-1'] }, { ip: '10.244.1.3' }])]));
  t.same(sp.endpoints[0]!.zoneHints, ['zone-a', 'zone-b']);
  t.same(sp.endpoints[0]!.nodeHints, ['node-1']);
  t.equal(sp.endpoints[0]!.zone, 'zone-a');
  t.equal(sp.endpoints[1]!.zoneHints, undefined);
  t.equal(sp.trafficDistribution, 'PreferSameZone');
  t.equal(sp.topologyMode, 'Auto');
});

t.test('a health check NodePort only for a LoadBalancer with eTP Local (upstream NeedsHealthCheck)', async (t) => {
  const lb = (over: Partial<Parameters<typeof service>[0]>) =>
    onlyPort(snapshotOf([service({ ...nodePortSvc(), type: 'LoadBalancer', healthCheckNodePort: 32000, ...over })], [])).healthCheckNodePort;
  t.equal(lb({ externalTrafficPolicy: 'Local' }), 32000);
  t.equal(lb({ externalTrafficPolicy: 'Cluster' }), 0);
  t.equal(lb({ externalTrafficPolicy: 'Local', type: 'NodePort' }), 0);
});
