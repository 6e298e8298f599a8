/** The bench's synthetic cluster: deterministic from the seed, and the mix it promises. */
import t from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import { BENCH_NODE_NAME, SyntheticCluster, summarize } from '../../src/bench/synthetic-cluster.js';
import { seededRandom } from '../../src/bench/random.js';

t.test('the same seed gives the same cluster and the same changes; another seed another', async (t) => {
  const make = (seed: number) => {
    const g = new SyntheticCluster({ services: 200, endpointsPerService: 5, seed });
    const initial = g.initial();
    const changed = g.replaceEndpoint(initial[7]!.slices[0]!);
    const added = g.newService();
    return JSON.stringify({ initial, changed, added, pick: g.pickIndex(1000) });
  };
  t.equal(make(42), make(42));
  t.not(make(42), make(43));
});

t.test('the mix: types, ports, UDP, endpoints spread over nodes, some local', async (t) => {
  const N = 2000;
  const M = 10;
  const g = new SyntheticCluster({ services: N, endpointsPerService: M, seed: 7 });
  const all = g.initial();
  const s = summarize(all, g.nodes.length, BENCH_NODE_NAME);
  t.equal(s.services, N);
  t.equal(s.endpoints, N * M, 'exactly M endpoints per service');
  t.ok(s.byType.ClusterIP > 0.75 * N && s.byType.ClusterIP < 0.89 * N, `mostly ClusterIP (${s.byType.ClusterIP})`);
  t.ok(s.byType.NodePort > 0.08 * N && s.byType.NodePort < 0.16 * N, `some NodePort (${s.byType.NodePort})`);
  t.ok(s.byType.LoadBalancer > 0.03 * N && s.byType.LoadBalancer < 0.09 * N, `some LoadBalancer (${s.byType.LoadBalancer})`);
  const onePort = all.filter((x) => x.service.ports.length === 1).length;
  const twoPorts = all.filter((x) => x.service.ports.length === 2).length;
  t.equal(onePort + twoPorts, N, 'one or two ports each');
  t.ok(twoPorts > 0.25 * N && twoPorts < 0.42 * N, `about a third with two ports (${twoPorts})`);
  t.ok(s.udpServicePorts > 0.07 * N && s.udpServicePorts < 0.17 * N, `some UDP (${s.udpServicePorts})`);
  t.ok(s.localEndpoints > 0 && s.localEndpoints < 0.05 * s.endpoints, `some endpoints on this node (${s.localEndpoints})`);
  t.ok(s.nodes >= 100, `spread over many nodes (${s.nodes})`);
  const nodesUsed = new Set(all.flatMap((x) => x.slices.flatMap((sl) => sl.endpoints.map((e) => e.nodeName))));
  t.ok(nodesUsed.size > 0.9 * s.nodes, 'endpoints on (nearly) every node');

  const clusterIPs = all.map((x) => x.service.clusterIPs[0]!);
  t.equal(new Set(clusterIPs).size, N, 'unique ClusterIPs');
  t.ok(clusterIPs.every((ip) => ip.startsWith('10.9') || ip.startsWith('10.10') || ip.startsWith('10.11')), 'ClusterIPs in 10.96.0.0/12');
  const nodePorts = all.flatMap((x) => [...x.service.ports.map((p) => p.nodePort), x.service.healthCheckNodePort]).filter((p) => p !== 0);
  t.equal(new Set(nodePorts).size, nodePorts.length, 'no NodePort used twice');
  t.ok(nodePorts.every((p) => p >= 30000 && p <= 32767), 'NodePorts in 30000-32767');
  for (const x of all) {
    if (x.service.type === 'ClusterIP') t.ok(x.service.ports.every((p) => p.nodePort === 0));
    else t.ok(x.service.ports.every((p) => p.nodePort > 0), `${x.service.name}: NodePorts`);
    if (x.service.type === 'LoadBalancer') t.equal(x.service.loadBalancerIPs.length, 1);
    const names = x.service.ports.map((p) => `${p.name}/${p.protocol}`).sort();
    for (const sl of x.slices) {
      t.same(sl.ports.map((p) => `${p.name}/${p.protocol}`).sort(), names, 'slice ports match the service ports');
      t.ok(sl.endpoints.length <= 100);
      t.equal(sl.serviceName, x.service.name);
    }
  }
});

t.test('slices of at most 100 endpoints', async (t) => {
  const g = new SyntheticCluster({ services: 3, endpointsPerService: 250, seed: 1 });
  for (const x of g.initial()) {
    t.same(x.slices.map((s) => s.endpoints.length), [100, 100, 50]);
    t.equal(new Set(x.slices.map((s) => s.name)).size, 3, 'distinct slice names');
  }
});

t.test('services with no endpoints: one empty slice; a change adds one', async (t) => {
  const g = new SyntheticCluster({ services: 2, endpointsPerService: 0, seed: 1 });
  const [x] = g.initial();
  t.equal(x!.slices.length, 1);
  t.equal(x!.slices[0]!.endpoints.length, 0);
  t.equal(g.replaceEndpoint(x!.slices[0]!).endpoints.length, 1);
});

t.test('replaceEndpoint replaces exactly one endpoint with a new address', async (t) => {
  const g = new SyntheticCluster({ services: 5, endpointsPerService: 10, seed: 3 });
  const sl = g.initial()[2]!.slices[0]!;
  const next = g.replaceEndpoint(sl);
  const before = sl.endpoints.map((e) => e.addresses[0]);
  const after = next.endpoints.map((e) => e.addresses[0]);
  t.equal(after.length, before.length);
  t.equal(after.filter((a, i) => a !== before[i]).length, 1);
  t.notOk(before.includes(after.find((a, i) => a !== before[i]) ?? ''), 'a fresh pod IP');
  t.not(next, sl, 'a new object; the old one is not mutated');
});

t.test('the store accepts the whole cluster: every service port has its endpoints', async (t) => {
  const g = new SyntheticCluster({ services: 300, endpointsPerService: 4, seed: 9 });
  const all = g.initial();
  const store = new ClusterStore(g.node.name);
  store.setNode(g.node);
  for (const x of all) {
    store.upsertService(x.service);
    for (const sl of x.slices) store.upsertSlice(sl);
  }
  const { snapshot } = store.snapshot();
  t.equal(snapshot.servicePorts.size, all.reduce((n, x) => n + x.service.ports.length, 0));
  for (const sp of snapshot.servicePorts.values()) t.equal(sp.endpoints.length, 4, sp.key);
  t.ok([...snapshot.servicePorts.values()].some((sp) => sp.endpoints.some((e) => e.isLocal)), 'some endpoints local');
});

t.test('seededRandom: deterministic, in range, weighted picks follow the weights', async (t) => {
  const a = seededRandom(5);
  const b = seededRandom(5);
  const xs = Array.from({ length: 100 }, () => a.next());
  t.same(xs, Array.from({ length: 100 }, () => b.next()));
  t.ok(xs.every((x) => x >= 0 && x < 1));
  const r = seededRandom(1);
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < 10000; i++) counts[r.weighted([['a', 9], ['b', 1]] as const)]++;
  t.ok(counts.a > 8700 && counts.a < 9300, `9:1 (${counts.a}:${counts.b})`);
  t.throws(() => r.pick([]));
});
