/**
 * The nftables renderer against upstream: the same services as upstream's
 * TestOverallNFTablesRules (pkg/proxy/nftables/proxier_test.go) must give
 * the same table, object for object and rule for rule, and every feature of
 * the iptables renderer is checked on the Fake's state.
 */
import t from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import type { EndpointSlice, Service, Snapshot } from '../../src/agent/model/types.js';
import { hashAndTruncate, servicePortChains, endpointChain } from '../../src/backends/nftables/names.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { renderCleanup, renderFullSync } from '../../src/backends/nftables/render.js';
import type { NftRenderConfig } from '../../src/backends/nftables/render.js';
import { service, slice } from '../helpers/model.js';

const upstreamCfg: NftRenderConfig = {
  family: 'IPv4',
  clusterCIDR: '10.0.0.0/8',
  masqueradeAll: false,
  masqueradeBit: 14,
  nodeName: 'test-node',
  nodeIP: '192.168.0.2',
  nodePortAddresses: ['192.168.0.2'],
  serviceCIDRs: ['172.30.0.0/16'],
};

function snapshot(nodeName: string, services: Service[], slices: EndpointSlice[]): Snapshot {
  const store = new ClusterStore(nodeName);
  for (const s of services) store.upsertService(s);
  for (const s of slices) store.upsertSlice(s);
  return store.snapshot().snapshot;
}

function applied(snap: Snapshot, cfg: NftRenderConfig): FakeNft {
  const fake = new FakeNft();
  fake.run(renderFullSync(snap, cfg).tx);
  return fake;
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).map((l) => l.trim()).sort();

const p80 = (over: { port?: number; nodePort?: number; protocol?: 'TCP' | 'UDP' | 'SCTP' } = {}): Service['ports'][number] => ({
  name: 'p80',
  protocol: over.protocol ?? 'TCP',
  port: over.port ?? 80,
  nodePort: over.nodePort ?? 0,
  targetPort: 80,
});
const eps80 = { ports: [{ name: 'p80', protocol: 'TCP' as const, port: 80 }] };

t.test('names hash as upstream', async (t) => {
  t.equal(servicePortChains({ namespace: 'ns1', name: 'svc1', portName: 'p80', protocol: 'TCP' }).cluster, 'service-ULMVA6XW-ns1/svc1/tcp/p80');
  t.equal(endpointChain({ namespace: 'ns1', name: 'svc1', portName: 'p80', protocol: 'TCP' }, '10.180.0.1', 80), 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  t.equal(servicePortChains({ namespace: 'ns5', name: 'svc5', portName: 'p80', protocol: 'TCP' }).firewall, 'firewall-HVFWP5L3-ns5/svc5/tcp/p80');
  const long = hashAndTruncate(`${'a'.repeat(63)}/${'b'.repeat(63)}/tcp/${'c'.repeat(63)}__${'fd00.1234.5678.9abc.def0.1234.5678.9abc'}/65535`);
  t.equal(long.length, 240, 'cut to 240 characters');
  t.ok(long.endsWith('...'));
});

t.test('the same table as upstream for the same services (TestOverallNFTablesRules)', async (t) => {
  const services: Service[] = [
    service({ namespace: 'ns1', name: 'svc1', clusterIPs: ['172.30.0.41'], ports: [p80()] }),
    service({
      namespace: 'ns2',
      name: 'svc2',
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      clusterIPs: ['172.30.0.42'],
      ports: [p80({ nodePort: 3001 })],
      loadBalancerIPs: ['1.2.3.4'],
      externalIPs: ['192.168.99.22'],
      healthCheckNodePort: 30000,
    }),
    service({ namespace: 'ns3', name: 'svc3', type: 'NodePort', clusterIPs: ['172.30.0.43'], ports: [p80({ nodePort: 3003 })] }),
    service({ namespace: 'ns4', name: 'svc4', type: 'NodePort', clusterIPs: ['172.30.0.44'], externalIPs: ['192.168.99.33'], ports: [p80()] }),
    service({
      namespace: 'ns5',
      name: 'svc5',
      type: 'LoadBalancer',
      clusterIPs: ['172.30.0.45'],
      ports: [p80({ nodePort: 3002 })],
      loadBalancerIPs: ['5.6.7.8'],
      healthCheckNodePort: 30000,
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 10800,
    }),
    service({ namespace: 'ns6', name: 'svc6', clusterIPs: ['172.30.0.46'], ports: [p80()] }),
  ];
  const other = 'some-other-node';
  const slices: EndpointSlice[] = [
    { ...slice('svc1', [{ ip: '10.180.0.1', node: other }], eps80), namespace: 'ns1' },
    { ...slice('svc2', [{ ip: '10.180.0.2', node: other }], eps80), namespace: 'ns2' },
    { ...slice('svc3', [{ ip: '10.180.0.3', node: other }], eps80), namespace: 'ns3' },
    { ...slice('svc4', [{ ip: '10.180.0.4', node: other }, { ip: '10.180.0.5', node: 'test-node' }], eps80), namespace: 'ns4' },
    { ...slice('svc5', [{ ip: '10.180.0.3', node: other }], eps80), namespace: 'ns5' },
  ];
  const fake = applied(snapshot('test-node', services, slices), { ...upstreamCfg, layout: 'upstream' });

  const expected = `
    add table ip kube-proxy { comment "rules for kube-proxy" ; }
    add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
    add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
    add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
    add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
    add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
    add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
    add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
    add chain ip kube-proxy cluster-ips-check
    add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
    add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
    add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
    add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
    add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
    add chain ip kube-proxy firewall-check
    add chain ip kube-proxy mark-for-masquerade
    add chain ip kube-proxy masquerading
    add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
    add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
    add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
    add chain ip kube-proxy nodeport-endpoints-check
    add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
    add chain ip kube-proxy services
    add chain ip kube-proxy service-endpoints-check
    add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
    add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
    add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
    add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
    add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
    add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
    add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
    add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
    add rule ip kube-proxy masquerading mark set mark xor 0x4000
    add rule ip kube-proxy masquerading masquerade fully-random
    add rule ip kube-proxy nat-output jump services
    add rule ip kube-proxy nat-postrouting jump masquerading
    add rule ip kube-proxy nat-prerouting jump services
    add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    add rule ip kube-proxy reject-chain reject
    add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
    add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
    add element ip kube-proxy nodeport-ips { 192.168.0.2 }
    add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services

    # svc1
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
    add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

    # svc2
    add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
    add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
    add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
    add element ip kube-proxy cluster-ips { 172.30.0.42 }
    add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

    # svc3
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
    add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
    add element ip kube-proxy cluster-ips { 172.30.0.43 }
    add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

    # svc4
    add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
    add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
    add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
    add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
    add element ip kube-proxy cluster-ips { 172.30.0.44 }
    add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

    # svc5
    add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
    add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
    add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
    add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
    add element ip kube-proxy cluster-ips { 172.30.0.45 }
    add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

    # svc6
    add element ip kube-proxy cluster-ips { 172.30.0.46 }
    add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
  `;
  t.same(lines(fake.dump('ip', 'kube-proxy')), lines(expected));
});

t.test('IPv6: ip6 table, ip6 matches, endpoint chain names with dots, [addr]:port DNAT', async (t) => {
  const store = new ClusterStore('node-1', 'IPv6');
  store.upsertService(service({ name: 'v6', clusterIPs: ['fd00:10:96::10'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }], type: 'NodePort' }));
  store.upsertSlice({ ...slice('v6', [{ ip: 'fd00:10:244::5' }]), addressType: 'IPv6' });
  const snap = store.snapshot().snapshot;
  const cfg: NftRenderConfig = { family: 'IPv6', clusterCIDR: 'fd00:10:244::/64', masqueradeAll: false, masqueradeBit: 14 };
  for (const layout of ['upstream', 'shared'] as const) {
    const { text, tx } = renderFullSync(snap, { ...cfg, layout });
    t.match(text, /^add table ip6 kube-proxy/m);
    t.match(text, /add set ip6 kube-proxy cluster-ips \{ type ipv6_addr ;/);
    t.match(text, /services fib daddr type local ip6 daddr != ::1 meta l4proto \. th dport vmap @service-nodeports/);
    t.notMatch(text, / ip daddr /);
    if (layout === 'upstream') {
      t.match(text, /ip6 daddr fd00:10:96::10 ip6 saddr != fd00:10:244::\/64 jump mark-for-masquerade/);
      t.match(text, /endpoint-\w{8}-ns\/v6\/tcp\/http__fd00\.10\.244\.\.5\/8080 meta l4proto tcp dnat to \[fd00:10:244::5\]:8080/);
    } else {
      t.match(text, /^add map ip6 kube-proxy service-endpoints-udp \{ typeof ip6 daddr \. udp dport \. numgen random mod 1 : ip6 daddr \. udp dport ;/m);
      t.match(text, /^add rule ip6 kube-proxy lb-internal-tcp-1 ip6 saddr != fd00:10:244::\/64 jump mark-for-masquerade$/m);
      t.match(text, /^add rule ip6 kube-proxy lb-nodeport-tcp-1 dnat ip6 to tcp dport \. numgen random mod 1 map @nodeport-endpoints-tcp$/m);
      t.match(text, /^add element ip6 kube-proxy service-endpoints-tcp \{ fd00:10:96::10 \. 80 \. 0 : fd00:10:244::5 \. 8080 \}$/m);
      t.match(text, /^add element ip6 kube-proxy hairpin-endpoints \{ fd00:10:244::5 \. fd00:10:244::5 \}$/m);
      t.notMatch(text, /chain ip6 kube-proxy endpoint-/, 'no endpoint chain');
    }
    const fake = new FakeNft();
    fake.run(tx);
    t.ok(fake.table('ip6', 'kube-proxy'), 'applies');
  }
});

t.test('cleanup deletes only our table', async (t) => {
  const fake = new FakeNft();
  fake.run(renderFullSync(snapshot('n', [service({ name: 'a' })], []), { masqueradeAll: false, masqueradeBit: 14 }).tx);
  const { Transaction } = await import('../../src/backends/nftables/nft/transaction.js');
  const other = new Transaction('ip', 'filter');
  other.add({ kind: 'table' });
  other.add({ kind: 'chain', name: 'input', type: 'filter', hook: 'input', priority: 0 });
  fake.run(other);
  fake.run(renderCleanup({ family: 'IPv4' }));
  t.same(fake.tableNames(), ['ip filter']);
  fake.run(renderCleanup({ family: 'IPv4' }));
  t.same(fake.tableNames(), ['ip filter'], 'idempotent');
});

t.test('an address listed twice, or an external IP equal to the ClusterIP: one element per key, the last wins', async (t) => {
  const svc = service({ name: 'dup', type: 'NodePort', clusterIPs: ['10.96.0.50'], externalIPs: ['10.96.0.50', '192.0.2.9', '192.0.2.9'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30050, targetPort: 8080 }] });
  const sl = slice('dup', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }]);
  for (const layout of ['shared', 'upstream'] as const) {
    const fake = applied(snapshot('node-1', [svc], [sl]), { masqueradeAll: false, masqueradeBit: 14, clusterCIDR: '10.244.0.0/16', layout });
    const target = fake.lookup('ip', 'kube-proxy', 'service-ips', ['10.96.0.50', 'tcp', '80']);
    t.match(target, layout === 'shared' ? /^goto lb-external-tcp-2$/ : /^goto external-/, `${layout}: the ClusterIP's key goes where the external IP (listed last) sends it`);
    t.match(fake.lookup('ip', 'kube-proxy', 'service-ips', ['192.0.2.9', 'tcp', '80']), /^goto /, `${layout}: the repeated external IP has its element`);
  }
});
