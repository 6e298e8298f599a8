/**
 * Every feature of the nftables renderer in upstream's layout (per-service
 * and per-endpoint chains: what ports with session affinity always get, and
 * every port with `layout: 'upstream'`), checked on the Fake's state after a
 * full sync through the backend: map elements, chains, numgen rules. The
 * shared layout is in test/unit/nft-shared-layout.test.ts; both are traced
 * packet by packet in test/unit/packet-flow-nftables.test.ts.
 */
import t from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import type { EndpointSlice, NodeInfo, Service } from '../../src/agent/model/types.js';
import { NftablesBackend } from '../../src/backends/nftables/backend.js';
import { affinitySet, endpointChain, servicePortChains } from '../../src/backends/nftables/names.js';
import { fakeApplier } from '../../src/backends/nftables/nft/applier.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import type { NftRenderConfig } from '../../src/backends/nftables/render.js';
import { service, slice } from '../helpers/model.js';
import type { EpSpec } from '../helpers/model.js';

const base: NftRenderConfig = { clusterCIDR: '10.244.0.0/16', masqueradeAll: false, masqueradeBit: 14, nodeName: 'node-1', layout: 'upstream' };
const T = ['ip', 'kube-proxy'] as const;

async function synced(services: Service[], slices: EndpointSlice[], cfg: NftRenderConfig = base, node?: NodeInfo): Promise<FakeNft> {
  const store = new ClusterStore('node-1');
  if (node) store.setNode(node);
  for (const s of services) store.upsertService(s);
  for (const s of slices) store.upsertSlice(s);
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  return fake;
}

const names = (name: string, portName = 'http', protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') => servicePortChains({ namespace: 'ns', name, portName, protocol });
const ep = (name: string, ip: string, port = 8080, portName = 'http', protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') =>
  endpointChain({ namespace: 'ns', name, portName, protocol }, ip, port);

t.test('ClusterIP: numgen over every ready endpoint, one endpoint chain each', async (t) => {
  const eps: EpSpec[] = [{ ip: '10.244.1.1' }, { ip: '10.244.2.1', node: 'node-2' }, { ip: '10.244.3.1', node: 'node-3' }, { ip: '10.244.4.1', ready: false }];
  const fake = await synced([service({ name: 'web' })], [slice('web', eps)]);
  const n = names('web');
  t.equal(fake.lookup(...T, 'service-ips', ['10.96.0.10', 'tcp', '80']), `goto ${n.cluster}`);
  t.ok(fake.elements(...T, 'cluster-ips')!.some((e) => e.key[0] === '10.96.0.10'));
  const rules = fake.rules(...T, n.cluster)!;
  t.equal(rules[0], 'ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade');
  t.equal(rules[1], `numgen random mod 3 vmap { 0 : goto ${ep('web', '10.244.1.1')} , 1 : goto ${ep('web', '10.244.2.1')} , 2 : goto ${ep('web', '10.244.3.1')} }`);
  t.same(fake.rules(...T, ep('web', '10.244.2.1')), ['ip saddr 10.244.2.1 jump mark-for-masquerade', 'meta l4proto tcp dnat to 10.244.2.1:8080']);
  t.notOk(fake.chainNames(...T).includes(ep('web', '10.244.4.1')), 'no chain for the unready endpoint');
});

t.test('no endpoints: reject through reject-chain for every address; no chains', async (t) => {
  const svc = service({ name: 'none', type: 'LoadBalancer', externalIPs: ['192.0.2.5'], loadBalancerIPs: ['198.51.100.5'], ports: [{ name: 'http', protocol: 'UDP', port: 53, nodePort: 30053, targetPort: 53 }] });
  const fake = await synced([svc], []);
  for (const ip of ['10.96.0.10', '192.0.2.5', '198.51.100.5']) {
    t.equal(fake.lookup(...T, 'no-endpoint-services', [ip, 'udp', '53']), 'goto reject-chain', ip);
    t.equal(fake.lookup(...T, 'service-ips', [ip, 'udp', '53']), undefined);
  }
  t.equal(fake.lookup(...T, 'no-endpoint-nodeports', ['udp', '30053']), 'goto reject-chain');
  t.equal(fake.elements(...T, 'no-endpoint-nodeports')![0]!.comment, 'ns/none:http');
  t.notOk(fake.chainNames(...T).some((c) => c.includes('/none/')), 'no per-service chain');
});

t.test('externalTrafficPolicy Local: external chain short-circuits pods and the node, then goes to local-', async (t) => {
  const svc = service({ name: 'lb', type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerIPs: ['198.51.100.7'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] });
  const fake = await synced([svc], [slice('lb', [{ ip: '10.244.1.1' }, { ip: '10.244.2.1', node: 'node-2' }])]);
  const n = names('lb');
  t.equal(fake.lookup(...T, 'service-ips', ['198.51.100.7', 'tcp', '80']), `goto ${n.external}`);
  t.equal(fake.lookup(...T, 'service-nodeports', ['tcp', '30080']), `goto ${n.external}`);
  t.same(fake.rules(...T, n.external), [
    `ip saddr 10.244.0.0/16 goto ${n.cluster} comment "short-circuit pod traffic"`,
    'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
    `fib saddr type local goto ${n.cluster} comment "short-circuit local traffic"`,
    `goto ${n.local}`,
  ]);
  t.same(fake.rules(...T, n.local), [`numgen random mod 1 vmap { 0 : goto ${ep('lb', '10.244.1.1')} }`], 'only the local endpoint, no masquerade');
  t.match(fake.rules(...T, n.cluster)!.at(-1), /numgen random mod 2 vmap/);
  t.equal(fake.lookup(...T, 'no-endpoint-services', ['198.51.100.7', 'tcp', '80']), undefined);
});

t.test('externalTrafficPolicy Local without a local endpoint: drop external traffic, keep the short-circuits', async (t) => {
  const svc = service({ name: 'lb', type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] });
  const fake = await synced([svc], [slice('lb', [{ ip: '10.244.2.1', node: 'node-2' }])]);
  const n = names('lb');
  t.equal(fake.lookup(...T, 'no-endpoint-nodeports', ['tcp', '30080']), 'drop');
  t.equal(fake.lookup(...T, 'service-nodeports', ['tcp', '30080']), `goto ${n.external}`, 'still dispatched: pods and the node are short-circuited');
  t.equal(fake.rules(...T, n.external)!.length, 3, 'no goto local-');
  t.notOk(fake.chainNames(...T).includes(n.local));
});

t.test('internalTrafficPolicy Local: ClusterIP to local- (masquerade there), drop when no local endpoint', async (t) => {
  const a = service({ name: 'a', internalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.11'] });
  const b = service({ name: 'b', internalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.12'] });
  const fake = await synced([a, b], [slice('a', [{ ip: '10.244.1.1' }, { ip: '10.244.2.1', node: 'node-2' }]), slice('b', [{ ip: '10.244.2.2', node: 'node-2' }])]);
  t.equal(fake.lookup(...T, 'service-ips', ['10.96.0.11', 'tcp', '80']), `goto ${names('a').local}`);
  t.same(fake.rules(...T, names('a').local), [
    'ip daddr 10.96.0.11 ip saddr != 10.244.0.0/16 jump mark-for-masquerade',
    `numgen random mod 1 vmap { 0 : goto ${ep('a', '10.244.1.1')} }`,
  ]);
  t.notOk(fake.chainNames(...T).includes(names('a').cluster), 'no cluster chain: nothing uses it');
  t.equal(fake.lookup(...T, 'no-endpoint-services', ['10.96.0.12', 'tcp', '80']), 'drop');
});

t.test('masqueradeAll, and no pod CIDR', async (t) => {
  const all = await synced([service({ name: 'a' })], [slice('a', [{ ip: '10.244.1.1' }])], { ...base, masqueradeAll: true });
  t.equal(all.rules(...T, names('a').cluster)![0], 'ip daddr 10.96.0.10 jump mark-for-masquerade');
  const none = await synced([service({ name: 'a' })], [slice('a', [{ ip: '10.244.1.1' }])], { masqueradeAll: false, masqueradeBit: 14, layout: 'upstream' });
  t.match(none.rules(...T, names('a').cluster)![0], /^numgen/, 'no masquerade rule without a pod CIDR');
  const bit = await synced([], [], { ...base, masqueradeBit: 0 });
  t.same(bit.rules(...T, 'mark-for-masquerade'), ['mark set mark or 0x1']);
});

t.test('session affinity: a timeout set per endpoint, checked before numgen, updated in the endpoint chain', async (t) => {
  const svc = service({ name: 'st', sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 600 });
  const fake = await synced([svc], [slice('st', [{ ip: '10.244.1.1' }, { ip: '10.244.1.2' }])]);
  const set1 = affinitySet({ namespace: 'ns', name: 'st', portName: 'http', protocol: 'TCP' }, '10.244.1.1', 8080);
  const tbl = fake.table(...T)!;
  t.same({ ...tbl.sets.get(set1)!, elements: undefined, seq: 0 }, { kind: 'set', name: set1, type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeout: 600, elements: undefined, seq: 0 });
  const rules = fake.rules(...T, names('st').cluster)!;
  t.equal(rules[1], `ip saddr @${set1} goto ${ep('st', '10.244.1.1')}`);
  t.match(rules[3], /^numgen random mod 2 vmap/);
  t.equal(fake.rules(...T, ep('st', '10.244.1.1'))![1], `update @${set1} { ip saddr }`);
});

t.test('loadBalancerSourceRanges: firewall-ips to firewall- (drop other sources); the node admitted through its own LB IPs', async (t) => {
  const svc = service({
    name: 'fw',
    type: 'LoadBalancer',
    loadBalancerIPs: ['198.51.100.9'],
    loadBalancerSourceRanges: ['203.0.113.0/25', '192.168.0.0/24'],
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30081, targetPort: 8080 }],
  });
  const fake = await synced([svc], [slice('fw', [{ ip: '10.244.1.1' }])], { ...base, nodeIP: '192.168.0.2' });
  const n = names('fw');
  t.equal(fake.lookup(...T, 'firewall-ips', ['198.51.100.9', 'tcp', '80']), `goto ${n.firewall}`);
  t.same(fake.rules(...T, n.firewall), ['ip saddr != { 203.0.113.0/25, 192.168.0.0/24, 198.51.100.9 } drop']);
  t.same(fake.rules(...T, 'firewall-check'), ['ip daddr . meta l4proto . th dport vmap @firewall-ips']);
  t.same(fake.rules(...T, 'filter-prerouting-pre-dnat'), ['ct state new jump firewall-check']);
});

t.test('nodePortAddresses: nodeport-ips set instead of fib daddr type local; loopback left out', async (t) => {
  const np = service({ name: 'np', type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30082, targetPort: 8080 }] });
  const all = await synced([np], [slice('np', [{ ip: '10.244.1.1' }])]);
  t.same(all.rules(...T, 'services'), [
    'ip daddr . meta l4proto . th dport vmap @service-ips',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
  ]);
  t.equal(all.elements(...T, 'nodeport-ips'), undefined, 'no nodeport-ips set');
  const some = await synced([np], [slice('np', [{ ip: '10.244.1.1' }])], { ...base, nodePortAddresses: ['192.168.0.2', '127.0.0.1'] });
  t.same(some.rules(...T, 'services')![1], 'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
  t.same(some.rules(...T, 'nodeport-endpoints-check'), ['ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports']);
  t.same(some.elements(...T, 'nodeport-ips')!.map((e) => e.key[0]), ['192.168.0.2']);
});

t.test('resolved from --nodeport-addresses and the Node at each sync', async (t) => {
  const np = service({ name: 'np', type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30082, targetPort: 8080 }] });
  const node: NodeInfo = { name: 'node-1', labels: {}, addresses: ['192.168.0.7'], podCIDRs: [] };
  const fake = await synced([np], [], { ...base, nodePortSpec: { spec: ['primary'], localAddresses: ['192.168.0.7', '10.0.0.1'] } }, node);
  t.same(fake.elements(...T, 'nodeport-ips')!.map((e) => e.key[0]), ['192.168.0.7']);
});

t.test('serviceCIDRs: unallocated ClusterIPs dropped, known ones with a wrong port rejected', async (t) => {
  const fake = await synced([service({ name: 'a' })], [], { ...base, serviceCIDRs: ['10.96.0.0/16', 'fd00::/108', '10.96.1.0/24', '10.97.0.0/16'] });
  t.same(fake.rules(...T, 'cluster-ips-check'), [
    'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    'ip daddr { 10.96.0.0/16, 10.97.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"',
  ]);
  const without = await synced([service({ name: 'a' })], []);
  t.equal(without.rules(...T, 'cluster-ips-check')!.length, 1);
});

t.test('terminating endpoints are used when nothing is ready; topology hints narrow the cluster endpoints', async (t) => {
  const term = await synced([service({ name: 'tt' })], [slice('tt', [{ ip: '10.244.1.1', ready: false, serving: true, terminating: true }, { ip: '10.244.1.2', ready: false, serving: false, terminating: true }])]);
  t.equal(term.rules(...T, names('tt').cluster)!.at(-1), `numgen random mod 1 vmap { 0 : goto ${ep('tt', '10.244.1.1')} }`);
  const zoned = await synced(
    [service({ name: 'z' })],
    [slice('z', [{ ip: '10.244.1.1', forZones: ['a'] }, { ip: '10.244.2.1', node: 'node-2', forZones: ['b'] }])],
    { ...base, nodeZone: 'a' },
  );
  t.equal(zoned.rules(...T, names('z').cluster)!.at(-1), `numgen random mod 1 vmap { 0 : goto ${ep('z', '10.244.1.1')} }`);
});

t.test('several ports, protocols and services sharing addresses', async (t) => {
  const multi = service({
    name: 'dns',
    ports: [
      { name: 'dns', protocol: 'UDP', port: 53, nodePort: 0, targetPort: 53 },
      { name: 'dns-tcp', protocol: 'TCP', port: 53, nodePort: 0, targetPort: 53 },
      { name: 'sctp', protocol: 'SCTP', port: 53, nodePort: 0, targetPort: 53 },
    ],
  });
  const sl = slice('dns', [{ ip: '10.244.1.1' }], {
    ports: [
      { name: 'dns', protocol: 'UDP', port: 53 },
      { name: 'dns-tcp', protocol: 'TCP', port: 53 },
      { name: 'sctp', protocol: 'SCTP', port: 53 },
    ],
  });
  const fake = await synced([multi], [sl]);
  t.same(fake.elements(...T, 'cluster-ips')!.map((e) => e.key), [['10.96.0.10']], 'one cluster-ips element for three ports');
  t.same(
    fake.elements(...T, 'service-ips')!.map((e) => e.key.join(' . ')),
    ['10.96.0.10 . sctp . 53', '10.96.0.10 . tcp . 53', '10.96.0.10 . udp . 53'],
  );
  t.equal(fake.rules(...T, ep('dns', '10.244.1.1', 53, 'dns', 'UDP'))!.at(-1), 'meta l4proto udp dnat to 10.244.1.1:53');
  t.equal(fake.rules(...T, ep('dns', '10.244.1.1', 53, 'sctp', 'SCTP'))!.at(-1), 'meta l4proto sctp dnat to 10.244.1.1:53');
});

t.test('fixed chains as upstream: hooks, priorities, jumps and masquerading', async (t) => {
  const fake = await synced([], []);
  const tbl = fake.table(...T)!;
  const base = [...tbl.chains.values()].filter((c) => c.type !== undefined).map((c) => `${c.name} ${c.type} ${c.hook} ${c.priority}`).sort();
  t.same(base, [
    'filter-forward filter forward 0',
    'filter-input filter input 0',
    'filter-output filter output 0',
    'filter-output-pre-dnat filter output -110',
    'filter-prerouting-pre-dnat filter prerouting -110',
    'nat-output nat output -100',
    'nat-postrouting nat postrouting 100',
    'nat-prerouting nat prerouting -100',
  ]);
  t.same(fake.rules(...T, 'masquerading'), ['mark and 0x4000 == 0 return', 'mark set mark xor 0x4000', 'masquerade fully-random']);
  t.same(fake.rules(...T, 'filter-input'), ['ct state new jump nodeport-endpoints-check', 'ct state new jump service-endpoints-check']);
  t.same(fake.rules(...T, 'nat-prerouting'), ['jump services']);
  t.same(fake.rules(...T, 'nat-postrouting'), ['jump masquerading']);
});
