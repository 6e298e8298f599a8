import t from 'tap';
import { renderFull, DEFAULT_RENDER_CONFIG, probability } from '../../src/backends/iptables/render.js';
import { JUMP_RULES, svcChain, sepChain } from '../../src/backends/iptables/names.js';
import { renderCleanup } from '../../src/backends/iptables/cleanup.js';
import { missingJumps, parseSaved } from '../../src/backends/iptables/saved-state.js';
import { service, slice, snapshotOf } from '../helpers/model.js';

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
  t.notMatch(text, /! -s/);
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
  const second = renderFull(snap, cfg, { missingJumps: missing, staleServiceChains: ['nat/KUBE-SVC-OLDOLDOLDOLDOLDO', ...first.serviceChains] });
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
  t.notMatch(text, /FOREIGN - \[0:0\]|-X FOREIGN|KUBE-FIREWALL/, 'foreign and kubelet chains untouched');
  t.match(text, /-X KUBE-SVC-AAAA/);
  t.match(text, /-X KUBE-SEP-BBBB/);
  t.equal(renderCleanup(parseSaved('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n')), undefined, 'nothing to do');
});
