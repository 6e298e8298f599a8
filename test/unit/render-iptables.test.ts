import t from 'tap';
import { FullRestoreInput, renderFull, DEFAULT_RENDER_CONFIG, probability } from '../../src/backends/iptables/render.js';
import { CHUNK_CHARS } from '../../src/backends/iptables/restore-input.js';
import { lineOfChunks, runWithChunks } from '../../src/backends/iptables/tool.js';
import { JUMP_RULES, svcChain, sepChain } from '../../src/backends/iptables/names.js';
import { renderCleanup } from '../../src/backends/iptables/cleanup.js';
import { missingJumps, parseSaved } from '../../src/backends/iptables/saved-state.js';
import { renderServicePort } from '../../src/backends/iptables/render-service.js';
import { onlyPort, service, slice, snapshotOf } from '../helpers/model.js';

const cfg = { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' };
const render = (snap: ReturnType<typeof snapshotOf>, c = cfg) => renderFull(snap, c, { missingJumps: JUMP_RULES, staleServiceChains: [] });

t.test('chain names match upstream\'s hashing', async (t) => {
  const sp = { displayName: 'ns1/svc1:p80', protocol: 'TCP' } as Parameters<typeof svcChain>[0];
  t.equal(svcChain(sp), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  t.equal(sepChain(sp, '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
});

t.test('probabilities are 1/n with ten decimals, as upstream', async (t) => {
  t.equal(probability(3), '0.3333333333');
  t.equal(probability(2), '0.5000000000');
});

t.test('every service rule carries a comment naming namespace/name:port', async (t) => {
  const snap = snapshotOf(
    [service({ name: 'web', type: 'LoadBalancer', loadBalancerIPs: ['198.51.100.10'], externalIPs: ['192.0.2.9'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] })],
    [slice('web', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }, { ip: '10.244.1.4' }])],
  );
  const { text } = render(snap);
  const serviceRules = text.split('\n').filter((l) => /^-A KUBE-(SVC|SEP|NODEPORTS)-?/.test(l) || (l.startsWith('-A KUBE-SERVICES') && !l.includes('nodeports')));
  t.ok(serviceRules.length >= 10);
  for (const l of serviceRules) t.match(l, /--comment "?ns\/web:http/, l);
  t.match(text, /-m statistic --mode random --probability 0\.3333333333 -j KUBE-SEP-/);
  t.match(text, /-m statistic --mode random --probability 0\.5000000000 -j KUBE-SEP-/);
  t.equal((text.match(/--probability/g) ?? []).length, 2, 'the last endpoint has no probability');
  t.match(text, /-A KUBE-SERVICES -m comment --comment "ns\/web:http external IP" -m tcp -p tcp -d 192\.0\.2\.9 --dport 80 -j KUBE-EXT-/);
  t.match(text, /-A KUBE-SERVICES -m comment --comment "ns\/web:http loadbalancer IP" -m tcp -p tcp -d 198\.51\.100\.10 --dport 80 -j KUBE-EXT-/);
  t.match(text, /-A KUBE-NODEPORTS -m comment --comment ns\/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-/);
  t.match(text, /! -s 10\.244\.0\.0\/16 -j KUBE-MARK-MASQ/);
  t.match(text, /-j MASQUERADE --random-fully/);
});

t.test('no endpoints: REJECT in filter, nothing in nat', async (t) => {
  const snap = snapshotOf([service({ name: 'empty', type: 'NodePort', ports: [{ name: 'http', protocol: 'UDP', port: 53, nodePort: 30053, targetPort: 53 }] })], []);
  const { text } = render(snap);
  t.match(text, /-A KUBE-SERVICES -m comment --comment "ns\/empty:http has no endpoints" -m udp -p udp -d 10\.96\.0\.10 --dport 53 -j REJECT/);
  t.match(text, /-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns\/empty:http has no endpoints" -m addrtype --dst-type LOCAL -m udp -p udp --dport 30053 -j REJECT/);
  t.notMatch(text, /KUBE-SVC-/);
});

t.test('masquerade-all and masquerade bit', async (t) => {
  const snap = snapshotOf([service({ name: 'web' })], [slice('web', [{ ip: '10.244.1.2' }])]);
  const { text } = render(snap, { ...cfg, masqueradeAll: true, masqueradeBit: 5 });
  t.match(text, /-d 10\.96\.0\.10 --dport 80 -j KUBE-MARK-MASQ/);
  t.notMatch(text, /! -s 10\.244/);
  t.match(text, /-A KUBE-MARK-MASQ -j MARK --or-mark 0x20\n/);
  t.match(text, /-m mark ! --mark 0x20\/0x20 -j RETURN/);
});

t.test('SCTP uses the sctp match', async (t) => {
  const snap = snapshotOf([service({ name: 's', ports: [{ name: 'x', protocol: 'SCTP', port: 9, nodePort: 0, targetPort: 9 }] })], [
    slice('s', [{ ip: '10.244.1.2' }], { ports: [{ name: 'x', protocol: 'SCTP', port: 9 }] }),
  ]);
  t.match(render(snap).text, /-m sctp -p sctp -d 10\.96\.0\.10 --dport 9 -j KUBE-SVC-/);
});

t.test('jump rules are inserted only when missing; stale chains are flushed and deleted', async (t) => {
  const snap = snapshotOf([service({ name: 'web' })], [slice('web', [{ ip: '10.244.1.2' }])]);
  const first = render(snap);
  const saved = parseSaved(`*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\n-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n`);
  const missing = missingJumps(saved);
  t.equal(missing.length, JUMP_RULES.length - 1);
  t.notOk(missing.some((j) => j.table === 'nat' && j.from === 'PREROUTING'));
  // Every per-service chain the first input wrote is in the kernel too.
  const live = [...first.text.matchAll(/^:(KUBE-(?:SVC|SVL|EXT|FW|SEP)-\S+) /gm)].map((m) => `nat/${m[1]}`);
  t.ok(live.length >= 2);
  const second = renderFull(snap, cfg, { missingJumps: missing, staleServiceChains: ['nat/KUBE-SVC-OLDOLDOLDOLDOLDO', ...live] });
  t.notMatch(second.text, /-I PREROUTING/);
  t.match(second.text, /-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES/);
  t.match(second.text, /:KUBE-SVC-OLDOLDOLDOLDOLDO - \[0:0\][^]*-X KUBE-SVC-OLDOLDOLDOLDOLDO\nCOMMIT/);
  t.equal((second.text.match(/^-X /gm) ?? []).length, 1, 'live chains are not deleted');
});

t.test('cleanup removes only what is ours', async (t) => {
  const saved = parseSaved(`*filter
:INPUT ACCEPT [0:0]
:FOREIGN - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A INPUT -s 192.0.2.1/32 -j FOREIGN
-A INPUT -j KUBE-FIREWALL
-A FOREIGN -j KUBE-SERVICES
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SVC-AAAA - [0:0]
:KUBE-SEP-BBBB - [0:0]
-A KUBE-SVC-AAAA -j KUBE-SEP-BBBB
COMMIT
`);
  const text = renderCleanup(saved)!;
  t.match(text, /-D INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES/);
  t.match(text, /-D FOREIGN -j KUBE-SERVICES/);
  t.notMatch(text, /FOREIGN - \[0:0\]|-X FOREIGN|KUBE-FIREWALL|KUBE-KUBELET-CANARY/, 'foreign and kubelet chains untouched');
  t.match(text, /-X KUBE-SVC-AAAA/);
  t.match(text, /-X KUBE-SEP-BBBB/);
  t.equal(renderCleanup(parseSaved('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n')), undefined, 'nothing to do');
});

// --- upstream's own expected output (pkg/proxy/iptables/proxier_test.go), line for line ---

const p80 = (nodePort = 0) => [{ name: 'p80', protocol: 'TCP' as const, port: 80, nodePort, targetPort: 80 }];
const ep80 = (svc: string, ip: string, node = '') => slice(svc, [{ ip, node }], { namespace: 'ns', ports: [{ name: 'p80', protocol: 'TCP', port: 80 }] });
const upstreamCfg = { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.0.0.0/8', randomFully: false, nodeIP: '192.168.0.2' };

/** The lines of `text` that belong to the given service (by name or chain hash), sorted. */
function linesOf(text: string, ...keys: string[]): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('-A ') && keys.some((k) => l.includes(k)))
    .sort();
}

t.test('eTP Local LoadBalancer without local endpoints: exactly upstream\'s rules', async (t) => {
  const snap = snapshotOf(
    [service({ namespace: 'ns2', name: 'svc2', type: 'LoadBalancer', clusterIPs: ['172.30.0.42'], externalIPs: ['192.168.99.22'], loadBalancerIPs: ['1.2.3.4'], externalTrafficPolicy: 'Local', healthCheckNodePort: 30000, ports: p80(3001) })],
    [{ ...ep80('svc2', '10.180.0.2'), namespace: 'ns2' }],
  );
  const { text } = renderFull(snap, upstreamCfg, { missingJumps: [], staleServiceChains: [] });
  t.same(
    linesOf(text, 'ns2/svc2', 'GNZBNJ2PO5MGZ6GT', 'RS4RBKLTHTF2IUXJ'),
    [
      '-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP',
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP',
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP',
      '-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
      '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
      '-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80',
      '-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
      '-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ',
    ].sort(),
  );
  t.notMatch(text, /KUBE-SVL-GNZBNJ2PO5MGZ6GT/, 'no local policy chain without local endpoints');
});

t.test('loadBalancerSourceRanges: exactly upstream\'s rules', async (t) => {
  const snap = snapshotOf(
    [service({ namespace: 'ns5', name: 'svc5', type: 'LoadBalancer', clusterIPs: ['172.30.0.45'], loadBalancerIPs: ['5.6.7.8'], loadBalancerSourceRanges: ['203.0.113.0/25'], ports: p80(3002) })],
    [{ ...ep80('svc5', '10.180.0.3'), namespace: 'ns5' }],
  );
  const { text } = renderFull(snap, upstreamCfg, { missingJumps: [], staleServiceChains: [] });
  t.same(
    linesOf(text, 'ns5/svc5', 'NUKIZ6OKUXPJNT4C', 'I77PXRDZVX7PMWMN'),
    [
      '-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP',
      '-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C',
      '-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C',
      '-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C',
      '-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ',
      '-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C',
      '-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C',
      '-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"',
      '-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80',
      '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
      '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN',
    ].sort(),
  );
  // A range holding the node IP also admits the LB IP as a source (node traffic looped back through the VIP).
  const fromNode = renderFull(snap, { ...upstreamCfg, nodeIP: '203.0.113.9' }, { missingJumps: [], staleServiceChains: [] }).text;
  t.match(fromNode, /-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5\/svc5:p80 loadbalancer IP" -s 203\.0\.113\.0\/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5\/svc5:p80 loadbalancer IP" -s 5\.6\.7\.8 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic/);
  t.notMatch(text, /-s 5\.6\.7\.8/, 'not when the node IP is outside the ranges');
});

t.test('session affinity: upstream\'s recent rules, and large-cluster mode drops exactly the per-endpoint comments', async (t) => {
  const snap = snapshotOf(
    [service({ namespace: 'ns1', name: 'svc1', clusterIPs: ['172.30.0.41'], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 10800, ports: p80() })],
    [{ ...ep80('svc1', '10.180.0.1'), namespace: 'ns1' }],
  );
  const { text } = renderFull(snap, upstreamCfg, { missingJumps: [], staleServiceChains: [] });
  t.same(linesOf(text, 'XPGD46QRK7WJZT7O', 'SXIVWICOYRO3J4NJ'), [
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
  ]);
  const large = renderFull(snap, { ...upstreamCfg, largeClusterMode: true }, { missingJumps: [], staleServiceChains: [] }).text;
  t.same(linesOf(large, 'XPGD46QRK7WJZT7O', 'SXIVWICOYRO3J4NJ'), [
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ]);
});

t.test('the NodePort tail rule and the localnet guard follow family, addresses and localhostNodePorts', async (t) => {
  const snap = snapshotOf([], []);
  const tail = (c: Partial<typeof cfg>) =>
    renderFull(snap, { ...cfg, ...c }, { missingJumps: [], staleServiceChains: [] })
      .text.split('\n')
      .filter((l) => l.includes('-j KUBE-NODEPORTS') || l.startsWith('-A KUBE-FIREWALL'))
      .map((l) => l.replace(' -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"', ''));
  const guard = '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP';
  // nat (KUBE-SERVICES) comes before filter (KUBE-FIREWALL) in a full input.
  t.same(tail({}), ['-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', guard]);
  t.same(tail({ localhostNodePorts: false }), ['-A KUBE-SERVICES -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS']);
  t.same(tail({ nodePortAddresses: ['203.0.113.1', '192.0.2.1'] }), ['-A KUBE-SERVICES -d 203.0.113.1 -j KUBE-NODEPORTS', '-A KUBE-SERVICES -d 192.0.2.1 -j KUBE-NODEPORTS']);
  t.same(tail({ nodePortAddresses: ['127.0.0.1', '192.0.2.1'] }), ['-A KUBE-SERVICES -d 127.0.0.1 -j KUBE-NODEPORTS', '-A KUBE-SERVICES -d 192.0.2.1 -j KUBE-NODEPORTS', guard]);
  t.same(tail({ nodePortAddresses: ['127.0.0.1', '192.0.2.1'], localhostNodePorts: false }), ['-A KUBE-SERVICES -d 192.0.2.1 -j KUBE-NODEPORTS']);
  t.same(tail({ family: 'IPv6', clusterCIDR: 'fd00::/48' }), ['-A KUBE-SERVICES -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS']);
  t.same(tail({ family: 'IPv6', clusterCIDR: 'fd00::/48', nodePortAddresses: ['::1', '2001:db8::1'] }), ['-A KUBE-SERVICES -d 2001:db8::1 -j KUBE-NODEPORTS']);
});

t.test('KUBE-FIREWALL: jumps without a comment; cleanup removes it only where no kubelet manages it', async (t) => {
  const { text } = render(snapshotOf([], []));
  t.match(text, /^-I INPUT +-j KUBE-FIREWALL$/m);
  t.match(text, /^-I OUTPUT +-j KUBE-FIREWALL$/m);
  const state = (kubelet: boolean) =>
    parseSaved(
      `*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n${kubelet ? ':KUBE-KUBELET-CANARY - [0:0]\n' : ''}:KUBE-FORWARD - [0:0]\n` +
        '-A INPUT -j KUBE-FIREWALL\n-A OUTPUT -j KUBE-FIREWALL\n-A KUBE-FIREWALL -d 127.0.0.0/8 -j DROP\nCOMMIT\n',
    );
  t.notOk(missingJumps(state(true)).some((j) => j.to === 'KUBE-FIREWALL' && j.from === 'INPUT'), 'kubelet\'s jump counts as present');
  const withKubelet = renderCleanup(state(true)) ?? '';
  t.match(withKubelet, /-X KUBE-FORWARD/);
  t.notMatch(withKubelet, /KUBE-FIREWALL/, 'kubelet\'s chain and jumps stay');
  const alone = renderCleanup(state(false)) ?? '';
  t.match(alone, /-D INPUT -j KUBE-FIREWALL\n-D OUTPUT -j KUBE-FIREWALL\n/);
  t.match(alone, /-X KUBE-FIREWALL\n/, 'ours, without a kubelet: removed');
});

t.test('a port\'s rendering depends only on the port and the config', async (t) => {
  const svcs = [service({ name: 'a', type: 'LoadBalancer', loadBalancerIPs: ['198.51.100.1'], externalTrafficPolicy: 'Local', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 80 }] }), service({ name: 'b', clusterIPs: ['10.96.0.11'] })];
  const slices = [slice('a', [{ ip: '10.244.1.2' }]), slice('b', [{ ip: '10.244.1.3' }])];
  const alone = renderServicePort(onlyPort(snapshotOf([svcs[0]!], [slices[0]!])), cfg);
  const together = renderServicePort(snapshotOf(svcs, slices).servicePorts.get('ns/a:http/TCP')!, cfg);
  t.same(together, alone);
});

t.test('chain names hash non-ASCII names too', async (t) => {
  const sp = { displayName: 'ns/é', protocol: 'TCP' } as Parameters<typeof svcChain>[0];
  t.match(svcChain(sp), /^KUBE-SVC-[A-Z2-7]{16}$/);
});

/** A snapshot with services of every kind, including stale chains to delete. */
function mixedSnapshot(n: number): ReturnType<typeof snapshotOf> {
  const svcs = [];
  const slices = [];
  for (let i = 1; i <= n; i++) {
    const type = i % 5 === 0 ? 'LoadBalancer' : i % 3 === 0 ? 'NodePort' : 'ClusterIP';
    svcs.push(
      service({
        name: `s${i}`,
        clusterIPs: [`10.96.${i >> 8}.${i & 255}`],
        type,
        ...(type === 'LoadBalancer' ? { loadBalancerIPs: [`198.51.100.${i & 255}`], loadBalancerSourceRanges: i % 2 ? ['203.0.113.0/24'] : [], externalTrafficPolicy: i % 2 ? 'Local' : 'Cluster' } : {}),
        ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: type === 'ClusterIP' ? 0 : 30000 + i, targetPort: 8080 }],
      }),
    );
    slices.push(slice(`s${i}`, i % 7 === 0 ? [] : Array.from({ length: 1 + (i % 4) }, (_, j) => ({ ip: `10.244.${j}.${i & 255}`, ...(j === 0 ? { node: 'node-1' } : {}) }))));
  }
  return snapshotOf(svcs, slices);
}

t.test('a full input is rendered lazily, in pieces, each chain declared before any rule uses it', async (t) => {
  const snap = mixedSnapshot(120);
  const opts = { missingJumps: JUMP_RULES, staleServiceChains: ['nat/KUBE-SVC-OLDOLDOLDOLDOLDO', 'nat/KUBE-SEP-OLDOLDOLDOLDOLDO'] };
  const full = new FullRestoreInput(snap.servicePorts, cfg, opts);
  const it = full[Symbol.iterator]();
  const first = it.next();
  t.notOk(first.done);
  t.notOk(full.done, 'not all rendered yet');
  t.ok(full.ports.size < snap.servicePorts.size, 'only the ports of the first piece are rendered');
  const pieces = [first.value as string];
  for (let r = it.next(); !r.done; r = it.next()) pieces.push(r.value);
  t.ok(full.done);
  t.equal(full.ports.size, snap.servicePorts.size);
  t.ok(pieces.length > 1, `${pieces.length} pieces`);
  for (const p of pieces) t.ok(p.endsWith('\n') && p.length < CHUNK_CHARS + 1000, 'whole lines, about CHUNK_CHARS');
  const text = pieces.join('');
  t.equal(full.bytes, Buffer.byteLength(text));
  t.same(text, renderFull(snap, cfg, opts).text, 'the same text as renderFull');
  t.throws(() => [...full], /only once/);

  // As iptables-restore reads it: a jump target must be declared (in this table) before the rule.
  let table = '';
  let declared = new Set<string>();
  const builtin = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) [table, declared] = [line.slice(1), new Set()];
    else if (line.startsWith(':')) declared.add(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ') || line.startsWith('-I ')) {
      const chain = line.split(' ')[1]!;
      const target = / -j (KUBE-\S+)/.exec(line)?.[1];
      if (!builtin.has(chain) && !declared.has(chain)) t.fail(`${table}: ${chain} used before it is declared: ${line}`);
      if (target && !declared.has(target)) t.fail(`${table}: ${target} jumped to before it is declared: ${line}`);
    } else if (line.startsWith('-X ') && !declared.has(line.slice(3))) t.fail(`${table}: ${line} of an undeclared chain`);
  }
  t.match(
    text,
    /\n:KUBE-SEP-OLDOLDOLDOLDOLDO - \[0:0\]\n:KUBE-SVC-OLDOLDOLDOLDOLDO - \[0:0\]\n-X KUBE-SEP-OLDOLDOLDOLDOLDO\n-X KUBE-SVC-OLDOLDOLDOLDOLDO\nCOMMIT\n/,
    'stale chains flushed (all of them), then deleted',
  );
});

t.test('runWithChunks: pieces written as the tool reads them; a failing line quoted; a failing producer kills the tool', async (t) => {
  const pieces = Array.from({ length: 40 }, (_, i) => `${'x'.repeat(40_000)}\nline ${i + 2}\n`);
  const ok = await runWithChunks('sh', ['-c', 'wc -c'], pieces);
  t.equal(ok.result.failed, false);
  t.equal(Number(String(ok.result.stdout).trim()), pieces.join('').length);

  const bad = await runWithChunks('sh', ['-c', 'head -n 4 >/dev/null; echo "line 4 failed" >&2; exit 2'], ['a\nb\n', 'c\nd\ne\n']);
  t.equal(bad.result.failed, true);
  t.equal(bad.result.exitCode, 2);
  t.equal(bad.lineAt(4), 'd');
  t.equal(lineOfChunks(['a\nb', 'c\nd\n'], 2), 'bc', 'a line across pieces');

  let taken = 0;
  function* failing(): Generator<string> {
    yield 'first\n';
    taken++;
    throw new Error('render failed');
  }
  const started = performance.now();
  await t.rejects(runWithChunks('sh', ['-c', 'cat >/dev/null; sleep 30'], failing()), /render failed/);
  t.equal(taken, 1);
  t.ok(performance.now() - started < 10_000, 'the tool was killed, not waited for');
});

t.test('parseSaved leaves out the rules of per-service chains, keeps their chains', async (t) => {
  const saved = parseSaved(
    '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]\n' +
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n' +
      '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-AAAAAAAAAAAAAAAA\n' +
      '-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-BBBBBBBBBBBBBBBB\n  -A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -j DNAT --to-destination 10.0.0.1:443\r\nCOMMIT\n',
  );
  t.same([...saved.chains.get('nat')!].sort(), ['KUBE-SEP-BBBBBBBBBBBBBBBB', 'KUBE-SERVICES', 'KUBE-SVC-AAAAAAAAAAAAAAAA', 'PREROUTING']);
  t.same(
    saved.rules.map((r) => `${r.chain} -> ${r.target}`),
    ['PREROUTING -> KUBE-SERVICES', 'KUBE-SERVICES -> KUBE-SVC-AAAAAAAAAAAAAAAA'],
  );
});
