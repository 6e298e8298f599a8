/**
 * Tests for the iptables packet tracer (src/trace/iptables/): parsing of
 * iptables-restore input and iptables-save output, and tracing of packets
 * through kube-proxy-style rules.
 */
import t from 'tap';
import { IptablesParseError, parseIptablesRules, type Ruleset } from '../../src/trace/iptables/parse.js';
import { tracePacket, type TracePacket, type TracePath, type TraceResult } from '../../src/trace/iptables/trace.js';
import { formatTrace } from '../../src/trace/iptables/format.js';

/** Rules as kube-proxy writes them (iptables-restore input). */
const RESTORE = `*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
-I INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-I FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-SERVICES -m comment --comment "ns/none:http has no endpoints" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns/none:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30020 -j REJECT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-EXT-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]
:KUBE-SEP-CCCCCCCCCCCCCCCC - [0:0]
:KUBE-SVC-DDDDDDDDDDDDDDDD - [0:0]
:KUBE-SEP-EEEEEEEEEEEEEEEE - [0:0]
:KUBE-SEP-FFFFFFFFFFFFFFFF - [0:0]
:KUBE-SEP-GGGGGGGGGGGGGGGG - [0:0]
:KUBE-SVC-HHHHHHHHHHHHHHHH - [0:0]
:KUBE-SEP-IIIIIIIIIIIIIIII - [0:0]
:KUBE-SEP-STALESTALESTALE0 - [0:0]
-X KUBE-SEP-STALESTALESTALE0
-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -m comment --comment "ns/web:http loadbalancer IP" -m tcp -p tcp -d 198.51.100.10 --dport 80 -j KUBE-EXT-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -m comment --comment "ns/three:dns cluster IP" -m udp -p udp -d 10.96.0.30 --dport 53 -j KUBE-SVC-DDDDDDDDDDDDDDDD
-A KUBE-SERVICES -m comment --comment "ns/sticky:http cluster IP" -m tcp -p tcp -d 10.96.0.40 --dport 80 -j KUBE-SVC-HHHHHHHHHHHHHHHH
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -m comment --comment ns/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-AAAAAAAAAAAAAAAA
-A KUBE-EXT-AAAAAAAAAAAAAAAA -m comment --comment "masquerade traffic for ns/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-AAAAAAAAAAAAAAAA -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-BBBBBBBBBBBBBBBB
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/web:http -> 10.244.1.3:8080" -j KUBE-SEP-CCCCCCCCCCCCCCCC
-A KUBE-SEP-BBBBBBBBBBBBBBBB -m comment --comment ns/web:http -s 10.244.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-BBBBBBBBBBBBBBBB -m comment --comment ns/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SEP-CCCCCCCCCCCCCCCC -m comment --comment ns/web:http -s 10.244.1.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-CCCCCCCCCCCCCCCC -m comment --comment ns/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.3:8080
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns cluster IP" -m udp -p udp -d 10.96.0.30 --dport 53 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.1:5353" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-EEEEEEEEEEEEEEEE
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.2:5353" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-FFFFFFFFFFFFFFFF
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.3:5353" -j KUBE-SEP-GGGGGGGGGGGGGGGG
-A KUBE-SEP-EEEEEEEEEEEEEEEE -m comment --comment ns/three:dns -s 10.244.2.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-EEEEEEEEEEEEEEEE -m comment --comment ns/three:dns -m udp -p udp -j DNAT --to-destination 10.244.2.1:5353
-A KUBE-SEP-FFFFFFFFFFFFFFFF -m comment --comment ns/three:dns -s 10.244.2.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-FFFFFFFFFFFFFFFF -m comment --comment ns/three:dns -m udp -p udp -j DNAT --to-destination 10.244.2.2:5353
-A KUBE-SEP-GGGGGGGGGGGGGGGG -m comment --comment ns/three:dns -s 10.244.2.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-GGGGGGGGGGGGGGGG -m comment --comment ns/three:dns -m udp -p udp -j DNAT --to-destination 10.244.2.3:5353
-A KUBE-SVC-HHHHHHHHHHHHHHHH -m comment --comment "ns/sticky:http -> 10.244.3.1:80" -m recent --name KUBE-SEP-IIIIIIIIIIIIIIII --rcheck --seconds 10800 --reap -j KUBE-SEP-IIIIIIIIIIIIIIII
-A KUBE-SVC-HHHHHHHHHHHHHHHH -m comment --comment "ns/sticky:http -> 10.244.3.1:80" -j KUBE-SEP-IIIIIIIIIIIIIIII
-A KUBE-SEP-IIIIIIIIIIIIIIII -m comment --comment ns/sticky:http -s 10.244.3.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-IIIIIIIIIIIIIIII -m comment --comment ns/sticky:http -m recent --name KUBE-SEP-IIIIIIIIIIIIIIII --set -m tcp -p tcp -j DNAT --to-destination 10.244.3.1:80
COMMIT
`;

/** The same rules as printed by `iptables-save` (iptables 1.8.9 nf_tables) after restoring RESTORE. */
const SAVED = `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ns/none:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30020 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "ns/none:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
# Completed
# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]
:KUBE-SEP-CCCCCCCCCCCCCCCC - [0:0]
:KUBE-SEP-EEEEEEEEEEEEEEEE - [0:0]
:KUBE-SEP-FFFFFFFFFFFFFFFF - [0:0]
:KUBE-SEP-GGGGGGGGGGGGGGGG - [0:0]
:KUBE-SEP-IIIIIIIIIIIIIIII - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SVC-DDDDDDDDDDDDDDDD - [0:0]
:KUBE-SVC-HHHHHHHHHHHHHHHH - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-AAAAAAAAAAAAAAAA -m comment --comment "masquerade traffic for ns/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-AAAAAAAAAAAAAAAA -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "ns/web:http" -m tcp --dport 30080 -j KUBE-EXT-AAAAAAAAAAAAAAAA
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-BBBBBBBBBBBBBBBB -s 10.244.1.2/32 -m comment --comment "ns/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m comment --comment "ns/web:http" -m tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SEP-CCCCCCCCCCCCCCCC -s 10.244.1.3/32 -m comment --comment "ns/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-CCCCCCCCCCCCCCCC -p tcp -m comment --comment "ns/web:http" -m tcp -j DNAT --to-destination 10.244.1.3:8080
-A KUBE-SEP-EEEEEEEEEEEEEEEE -s 10.244.2.1/32 -m comment --comment "ns/three:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-EEEEEEEEEEEEEEEE -p udp -m comment --comment "ns/three:dns" -m udp -j DNAT --to-destination 10.244.2.1:5353
-A KUBE-SEP-FFFFFFFFFFFFFFFF -s 10.244.2.2/32 -m comment --comment "ns/three:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-FFFFFFFFFFFFFFFF -p udp -m comment --comment "ns/three:dns" -m udp -j DNAT --to-destination 10.244.2.2:5353
-A KUBE-SEP-GGGGGGGGGGGGGGGG -s 10.244.2.3/32 -m comment --comment "ns/three:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-GGGGGGGGGGGGGGGG -p udp -m comment --comment "ns/three:dns" -m udp -j DNAT --to-destination 10.244.2.3:5353
-A KUBE-SEP-IIIIIIIIIIIIIIII -s 10.244.3.1/32 -m comment --comment "ns/sticky:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-IIIIIIIIIIIIIIII -p tcp -m comment --comment "ns/sticky:http" -m recent --set --name KUBE-SEP-IIIIIIIIIIIIIIII --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.3.1:80
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "ns/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -d 198.51.100.10/32 -p tcp -m comment --comment "ns/web:http loadbalancer IP" -m tcp --dport 80 -j KUBE-EXT-AAAAAAAAAAAAAAAA
-A KUBE-SERVICES -d 10.96.0.30/32 -p udp -m comment --comment "ns/three:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-DDDDDDDDDDDDDDDD
-A KUBE-SERVICES -d 10.96.0.40/32 -p tcp -m comment --comment "ns/sticky:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-HHHHHHHHHHHHHHHH
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-AAAAAAAAAAAAAAAA ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-BBBBBBBBBBBBBBBB
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment "ns/web:http -> 10.244.1.3:8080" -j KUBE-SEP-CCCCCCCCCCCCCCCC
-A KUBE-SVC-DDDDDDDDDDDDDDDD ! -s 10.244.0.0/16 -d 10.96.0.30/32 -p udp -m comment --comment "ns/three:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.1:5353" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-EEEEEEEEEEEEEEEE
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.2:5353" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-FFFFFFFFFFFFFFFF
-A KUBE-SVC-DDDDDDDDDDDDDDDD -m comment --comment "ns/three:dns -> 10.244.2.3:5353" -j KUBE-SEP-GGGGGGGGGGGGGGGG
-A KUBE-SVC-HHHHHHHHHHHHHHHH -m comment --comment "ns/sticky:http -> 10.244.3.1:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-IIIIIIIIIIIIIIII --mask 255.255.255.255 --rsource -j KUBE-SEP-IIIIIIIIIIIIIIII
-A KUBE-SVC-HHHHHHHHHHHHHHHH -m comment --comment "ns/sticky:http -> 10.244.3.1:80" -j KUBE-SEP-IIIIIIIIIIIIIIII
COMMIT
# Completed
`;

const NODE_IP = '192.168.1.10';
const OPTS = { localAddresses: [NODE_IP] };

const restoreRules = parseIptablesRules(RESTORE);
const savedRules = parseIptablesRules(SAVED);

function fwd(src: string, dst: string, dport: number, proto: TracePacket['proto'] = 'tcp'): TracePacket {
  return { origin: 'forward', src, dst, proto, dport };
}

function trace(packet: TracePacket, rules: Ruleset = restoreRules): TraceResult {
  return tracePacket(rules, packet, OPTS);
}

function close(a: number, b: number, eps = 1e-6): boolean {
  return Math.abs(a - b) < eps;
}

function totalProbability(r: TraceResult): number {
  return r.paths.reduce((s, p) => s + p.probability, 0);
}

function endpointMap(r: TraceResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of r.endpoints) out[`${e.address}:${e.port}`] = e.probability;
  return out;
}

function pathTo(r: TraceResult, address: string): TracePath {
  const p = r.paths.find((x) => x.dnat?.address === address);
  if (p === undefined) throw new Error(`no path to ${address}`);
  return p;
}

function lastStep(p: TracePath): TracePath['steps'][number] {
  const s = p.steps[p.steps.length - 1];
  if (s === undefined) throw new Error('path has no steps');
  return s;
}

t.test('parses both forms into the same chains and rules', async (t) => {
  for (const [name, rs] of [['restore', restoreRules], ['save', savedRules]] as const) {
    const nat = rs.tables.get('nat');
    const filter = rs.tables.get('filter');
    t.ok(nat, `${name}: nat table`);
    t.ok(filter, `${name}: filter table`);
    t.same([...(filter?.chains.keys() ?? [])].sort(), [
      'FORWARD', 'INPUT', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-SERVICES', 'OUTPUT',
    ], `${name}: filter chains`);
    t.equal(nat?.chains.get('PREROUTING')?.policy, 'ACCEPT', `${name}: built-in chain policy`);
    t.equal(nat?.chains.get('KUBE-SVC-AAAAAAAAAAAAAAAA')?.policy, null, `${name}: user chain has no policy`);
    t.equal(nat?.chains.get('KUBE-SVC-DDDDDDDDDDDDDDDD')?.rules.length, 4, `${name}: 3-endpoint service chain`);
    t.equal(filter?.chains.get('FORWARD')?.rules.length, 2, `${name}: FORWARD rules`);
    t.notOk(nat?.chains.has('KUBE-SEP-STALESTALESTALE0'), `${name}: -X removed the stale chain`);

    const masqRule = nat?.chains.get('KUBE-SVC-AAAAAAAAAAAAAAAA')?.rules[0];
    t.equal(masqRule?.comment, 'ns/web:http cluster IP', `${name}: comment extracted`);
    t.same(masqRule?.matches.find((m) => m.module === 'builtin')?.options.find((o) => o.name === 'source'),
      { name: 'source', args: ['10.244.0.0/16'], negated: true }, `${name}: negated -s`);
    t.same(masqRule?.target, { kind: 'jump', name: 'KUBE-MARK-MASQ', args: [], options: [] }, `${name}: jump target`);

    const ret = nat?.chains.get('KUBE-POSTROUTING')?.rules[0];
    t.same(ret?.matches, [{ module: 'mark', implicit: false, options: [{ name: 'mark', args: ['0x4000/0x4000'], negated: true }] }],
      `${name}: -m mark ! --mark`);

    const dnat = nat?.chains.get('KUBE-SEP-BBBBBBBBBBBBBBBB')?.rules[1];
    t.same(dnat?.target?.options, [{ name: 'to-destination', args: ['10.244.1.2:8080'] }], `${name}: DNAT target args`);
    t.equal(dnat?.table, 'nat');
    t.equal(dnat?.chain, 'KUBE-SEP-BBBBBBBBBBBBBBBB');
  }
  const fwdFirst = restoreRules.tables.get('filter')?.chains.get('FORWARD')?.rules[0];
  t.equal(fwdFirst?.raw,
    '-I FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    'the last -I comes first and keeps its raw text');
  t.equal(fwdFirst?.line, 8);
});

t.test('ClusterIP with 3 endpoints: 1/3 each from the statistic rules', async (t) => {
  for (const rules of [restoreRules, savedRules]) {
    const r = trace(fwd('10.244.9.9', '10.96.0.30', 53, 'udp'), rules);
    t.equal(r.verdict, 'ACCEPT');
    t.equal(r.paths.length, 3);
    t.same(Object.keys(endpointMap(r)), ['10.244.2.1:5353', '10.244.2.2:5353', '10.244.2.3:5353']);
    for (const e of r.endpoints) t.ok(close(e.probability, 1 / 3), `${e.address} has probability ${e.probability}`);
    t.ok(close(totalProbability(r), 1, 1e-12), 'probabilities sum to 1');
    t.equal(r.masquerade, 'never', 'pod source is inside the cluster CIDR');
    const second = pathTo(r, '10.244.2.2');
    t.same(second.steps.filter((s) => s.action === 'no match').map((s) => s.comment), ['ns/three:dns -> 10.244.2.1:5353'],
      'the second endpoint is reached after the first statistic rule did not match');
  }
  const tcp = trace(fwd('10.244.9.9', '10.96.0.30', 53, 'tcp'));
  t.same(tcp.endpoints, [], 'a TCP packet does not match the UDP service');

  const outside = trace(fwd('203.0.113.7', '10.96.0.30', 53, 'udp'));
  t.equal(outside.masquerade, 'always', 'off-cluster source is masqueraded');
  t.ok(outside.paths.every((p) => p.mark === 0), 'KUBE-POSTROUTING clears the masquerade mark');
});

t.test('two-endpoint service: 50/50 with DNAT steps', async (t) => {
  const r = trace(fwd('10.244.9.9', '10.96.0.10', 80));
  t.same(r.endpoints.map((e) => [e.address, e.port]), [['10.244.1.2', 8080], ['10.244.1.3', 8080]]);
  t.ok(close(endpointMap(r)['10.244.1.2:8080'] ?? 0, 0.5));
  const p = pathTo(r, '10.244.1.3');
  t.same(p.steps.filter((s) => s.table === 'nat').map((s) => s.action), [
    'jump KUBE-SERVICES',
    'jump KUBE-SVC-AAAAAAAAAAAAAAAA',
    'no match',
    'jump KUBE-SEP-CCCCCCCCCCCCCCCC',
    'DNAT 10.244.1.3:8080',
    'jump KUBE-POSTROUTING',
    'RETURN',
  ]);
  t.same(lastStep(p).chain, 'KUBE-POSTROUTING');
});

t.test('no endpoints: REJECT in the filter table', async (t) => {
  for (const rules of [restoreRules, savedRules]) {
    const r = trace(fwd('10.244.9.9', '10.96.0.20', 80), rules);
    t.equal(r.verdict, 'REJECT');
    t.same(r.endpoints, []);
    t.equal(r.paths.length, 1);
    const s = lastStep(r.paths[0] as TracePath);
    t.same([s.table, s.chain, s.action, s.comment], ['filter', 'KUBE-SERVICES', 'REJECT', 'ns/none:http has no endpoints']);

    const local = tracePacket(rules, { origin: 'local', src: NODE_IP, dst: '10.96.0.20', proto: 'tcp', dport: 80 }, OPTS);
    t.equal(local.verdict, 'REJECT', 'also from a local process (filter OUTPUT)');

    const nodePort = trace(fwd('203.0.113.7', NODE_IP, 30020), rules);
    t.equal(nodePort.verdict, 'REJECT', 'node port of a service without endpoints');
    t.equal(lastStep(nodePort.paths[0] as TracePath).chain, 'KUBE-EXTERNAL-SERVICES');

    const nodePortLocal = tracePacket(rules, { origin: 'local', src: NODE_IP, dst: NODE_IP, proto: 'tcp', dport: 30020 }, OPTS);
    t.equal(nodePortLocal.verdict, 'REJECT', 'local process to its own node port: rejected in INPUT after looping through lo');
  }
  t.equal(trace(fwd('10.244.9.9', '10.96.0.20', 81)).verdict, 'ACCEPT', 'another port of that IP is not rejected');
});

t.test('NodePort via addrtype LOCAL: masquerade mark, both endpoints', async (t) => {
  for (const rules of [restoreRules, savedRules]) {
    const r = trace(fwd('203.0.113.7', NODE_IP, 30080), rules);
    t.equal(r.verdict, 'ACCEPT');
    t.same(Object.keys(endpointMap(r)), ['10.244.1.2:8080', '10.244.1.3:8080']);
    t.equal(r.masquerade, 'always');
    for (const p of r.paths) {
      t.ok(p.steps.some((s) => s.chain === 'KUBE-SERVICES' && s.action === 'jump KUBE-NODEPORTS'));
      t.ok(p.steps.some((s) => s.chain === 'KUBE-MARK-MASQ' && s.action === 'MARK 0x4000'), 'mark set');
      t.ok(p.steps.some((s) => s.chain === 'KUBE-FORWARD' && s.action === 'ACCEPT'), 'KUBE-FORWARD accepts marked traffic');
      t.equal(lastStep(p).action, 'MASQUERADE');
    }
  }
  const loopback = trace(fwd('203.0.113.7', '127.0.0.1', 30080));
  t.same(Object.keys(endpointMap(loopback)), ['10.244.1.2:8080', '10.244.1.3:8080'], '127.0.0.0/8 is always local');

  const notLocal = trace(fwd('203.0.113.7', '192.168.1.99', 30080));
  t.equal(notLocal.verdict, 'ACCEPT');
  t.same(notLocal.endpoints, [], 'a non-local address does not reach KUBE-NODEPORTS');
  const noLocals = tracePacket(restoreRules, fwd('203.0.113.7', NODE_IP, 30080), { localAddresses: [] });
  t.same(noLocals.endpoints, [], 'locality comes from the options');
  const lb = trace(fwd('203.0.113.7', '198.51.100.10', 80));
  t.equal(lb.masquerade, 'always', 'load balancer IP goes through KUBE-EXT and is masqueraded');
  t.equal(lb.endpoints.length, 2);
});

t.test('hairpin: masquerade only when the source is the chosen endpoint', async (t) => {
  for (const rules of [restoreRules, savedRules]) {
    const r = trace(fwd('10.244.1.2', '10.96.0.10', 80), rules);
    t.equal(r.masquerade, 'some');
    t.equal(pathTo(r, '10.244.1.2').masquerade, true, 'endpoint talking to itself');
    t.equal(pathTo(r, '10.244.1.3').masquerade, false, 'endpoint talking to the other endpoint');
    t.equal(r.verdict, 'ACCEPT');
  }
  t.equal(trace(fwd('10.244.1.4', '10.96.0.10', 80)).masquerade, 'never');
});

t.test('session affinity: -m recent --rcheck does not match the first packet, --set does', async (t) => {
  for (const rules of [restoreRules, savedRules]) {
    const r = trace(fwd('10.244.9.9', '10.96.0.40', 80), rules);
    t.same(r.endpoints, [{ address: '10.244.3.1', port: 80, probability: 1 }]);
    const steps = (r.paths[0] as TracePath).steps;
    const rcheck = steps.find((s) => s.chain === 'KUBE-SVC-HHHHHHHHHHHHHHHH' && s.action === 'no match');
    t.match(rcheck?.notes?.join(' '), /recent --rcheck: first packet/);
    const dnat = steps.find((s) => s.action === 'DNAT 10.244.3.1:80');
    t.match(dnat?.notes?.join(' '), /recent --set/);
  }
});

t.test('a packet matching nothing is accepted without DNAT', async (t) => {
  const r = trace(fwd('10.244.9.9', '10.244.1.9', 9999));
  t.equal(r.verdict, 'ACCEPT');
  t.same(r.endpoints, []);
  t.equal(r.masquerade, 'never');
  t.equal(r.paths.length, 1);
  t.equal(r.paths[0]?.probability, 1);
  t.equal(r.paths[0]?.dnat, undefined);
  const empty = tracePacket(parseIptablesRules(''), fwd('1.2.3.4', '5.6.7.8', 1), OPTS);
  t.same([empty.verdict, empty.paths.length, empty.paths[0]?.steps.length], ['ACCEPT', 1, 0], 'empty ruleset');
});

t.test('restore and save forms trace identically', async (t) => {
  const packets: TracePacket[] = [
    fwd('10.244.9.9', '10.96.0.10', 80),
    fwd('10.244.1.2', '10.96.0.10', 80),
    fwd('203.0.113.7', '10.96.0.10', 80),
    fwd('10.244.9.9', '10.96.0.30', 53, 'udp'),
    fwd('10.244.9.9', '10.96.0.20', 80),
    fwd('10.244.9.9', '10.96.0.40', 80),
    fwd('203.0.113.7', NODE_IP, 30080),
    fwd('203.0.113.7', NODE_IP, 30020),
    fwd('203.0.113.7', '198.51.100.10', 80),
    fwd('10.244.9.9', '10.244.1.9', 9999),
    { origin: 'local', src: NODE_IP, dst: '10.96.0.10', proto: 'tcp', dport: 80 },
    { origin: 'local', src: NODE_IP, dst: NODE_IP, proto: 'tcp', dport: 30080 },
  ];
  const project = (r: TraceResult): unknown => ({
    verdict: r.verdict,
    masquerade: r.masquerade,
    endpoints: r.endpoints.map((e) => ({ ...e, probability: Math.round(e.probability * 1e6) })),
    paths: r.paths.map((p) => ({
      probability: Math.round(p.probability * 1e6),
      verdict: p.verdict,
      dnat: p.dnat,
      masquerade: p.masquerade,
      mark: p.mark,
      steps: p.steps.map((s) => `${s.table}/${s.chain} ${s.comment ?? ''} ${s.action}`),
    })),
  });
  for (const p of packets) {
    const a = trace(p, restoreRules);
    const b = trace(p, savedRules);
    t.same(project(b), project(a), `${p.origin} ${p.src} -> ${p.dst}:${p.dport}`);
    t.ok(close(totalProbability(a), 1, 1e-12) && close(totalProbability(b), 1, 1e-12), 'probabilities sum to 1');
  }
});

const GOTO_RULES = `*filter
:A - [0:0]
:B - [0:0]
-A FORWARD -p tcp --dport 3 -g B
-A FORWARD -j A
-A FORWARD -j DROP
-A A -p tcp --dport 1 -j B
-A A -p tcp --dport 2 -g B
-A A -j REJECT
-A B -j RETURN
COMMIT
`;

t.test('-j returns to the caller, -g returns to the caller of the caller', async (t) => {
  const rs = parseIptablesRules(GOTO_RULES);
  const jumped = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 1), OPTS);
  t.equal(jumped.verdict, 'REJECT', '-j B: RETURN continues in A, which rejects');
  t.same(jumped.paths[0]?.steps.map((s) => `${s.chain} ${s.action}`), [
    'FORWARD jump A', 'A jump B', 'B RETURN', 'A REJECT',
  ]);
  const gone = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 2), OPTS);
  t.equal(gone.verdict, 'DROP', '-g B: RETURN goes back to FORWARD, which drops');
  t.same(gone.paths[0]?.steps.map((s) => `${s.chain} ${s.action}`), [
    'FORWARD jump A', 'A goto B', 'B RETURN', 'FORWARD DROP',
  ]);
  const fromBuiltin = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 3), OPTS);
  t.equal(fromBuiltin.verdict, 'ACCEPT', '-g from a built-in chain: RETURN applies the policy');
  const dropPolicy = parseIptablesRules(GOTO_RULES.replace('*filter\n', '*filter\n:FORWARD DROP [0:0]\n'));
  const policy = tracePacket(dropPolicy, fwd('1.1.1.1', '2.2.2.2', 3), OPTS);
  t.equal(policy.verdict, 'DROP');
  t.same(policy.paths[0]?.steps.at(-1), { table: 'filter', chain: 'FORWARD', rule: '(policy DROP)', action: 'DROP' });
});

t.test('jump loops are cut and become DROP', async (t) => {
  const rs = parseIptablesRules(`*filter
:A - [0:0]
:B - [0:0]
:C - [0:0]
-A FORWARD -p tcp --dport 1 -j A
-A FORWARD -p tcp --dport 2 -j C
-A A -j B
-A B -j A
-A C -g C
COMMIT
`);
  const r = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 1), OPTS);
  t.equal(r.verdict, 'DROP');
  t.match(r.paths[0]?.steps.at(-1)?.action, /^DROP \(loop: jump depth limit 64 exceeded\)$/);
  t.equal(r.paths[0]?.steps.length, 65, 'FORWARD jump plus 64 nested jumps');
  const g = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 2), OPTS);
  t.equal(g.verdict, 'DROP');
  t.match(g.paths[0]?.steps.at(-1)?.action, /loop/, 'a goto loop is cut too');
  t.equal(tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 3), OPTS).verdict, 'ACCEPT');
});

function parseError(text: string): IptablesParseError {
  try {
    parseIptablesRules(text);
  } catch (err) {
    if (err instanceof IptablesParseError) return err;
    throw err;
  }
  throw new Error('expected a parse error');
}

t.test('unparseable lines give an error with the line number and text', async (t) => {
  const bad = parseError('*nat\n:KUBE-SERVICES - [0:0]\n\n-A KUBE-SERVICES -m tcp -p tcp --bogus 80 -j ACCEPT\nCOMMIT\n');
  t.equal(bad.line, 4);
  t.equal(bad.text, '-A KUBE-SERVICES -m tcp -p tcp --bogus 80 -j ACCEPT');
  t.match(bad.message, /line 4: unknown option "--bogus".*-A KUBE-SERVICES -m tcp -p tcp --bogus 80/);

  t.match(parseError('*filter\n-A INPUT -m comment --comment "oops -j ACCEPT\nCOMMIT\n').message, /line 2: unterminated double quote/);
  t.match(parseError('*filter\n-A NOPE -j ACCEPT\nCOMMIT\n').message, /line 2: chain "NOPE" does not exist in table filter/);
  t.match(parseError('*filter\n-A INPUT -j KUBE-MISSING\nCOMMIT\n').message, /line 2: chain or target "KUBE-MISSING" does not exist/);
  t.match(parseError('*filter\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n').message, /line 2: invalid IP address "10.0.0.300"/);
  t.match(parseError('*filter\n-A INPUT -p tcp --dport 80:70 -j ACCEPT\nCOMMIT\n').message, /line 2: invalid port range/);
  t.match(parseError('*filter\n-A INPUT --dport 80 -j ACCEPT\nCOMMIT\n').message, /line 2: unknown option "--dport"/);
  t.match(parseError('-A INPUT -j ACCEPT\n').message, /line 1: not inside a table/);
  t.match(parseError('*filter\n-A INPUT -j ACCEPT\n').message, /line 1: table is never committed/);
  t.match(parseError('*bogus\nCOMMIT\n').message, /line 1: unknown table "bogus"/);
  t.match(parseError('*nat\n-A PREROUTING -j DNAT\nCOMMIT\n').message, /line 2: DNAT requires --to-destination/);
  t.match(parseError('*nat\n:KUBE-SEP-X - [0:0]\n-A KUBE-SEP-X -j RETURN\n-X KUBE-SEP-X\nCOMMIT\n').message,
    /line 4: cannot delete chain KUBE-SEP-X: it still has 1 rule/);
  t.match(parseError('*filter\n-A INPUT -j ACCEPT\n-D INPUT -j DROP\nCOMMIT\n').message, /line 3: no matching rule to delete/);
  t.match(parseError('*filter\n-I INPUT 3 -j ACCEPT\nCOMMIT\n').message, /line 2: rule position 3 is out of range/);
});

t.test('-I ordering, -D, -F and -X apply to the parsed state', async (t) => {
  const rs = parseIptablesRules(`# a comment
*filter
:X1 - [0:0]
:X2 - [0:0]
:X3 - [0:0]
:GONE - [0:0]
-A INPUT -j X1
-I INPUT -j X2
-I INPUT 2 -j X3
-A INPUT -j ACCEPT
-A INPUT -s 10.0.0.1 -j DROP
-D INPUT -s 10.0.0.1/32 -j DROP
-A GONE -j ACCEPT
-F GONE
-X GONE
-A X2 -p tcp --dport 22 -j REJECT
COMMIT
*filter
-I INPUT 4 -j DROP
COMMIT
`);
  const input = rs.tables.get('filter')?.chains.get('INPUT');
  t.same(input?.rules.map((r) => r.target?.name), ['X2', 'X3', 'X1', 'DROP', 'ACCEPT']);
  t.notOk(rs.tables.get('filter')?.chains.has('GONE'), '-X removed the chain');
  const r = tracePacket(rs, fwd('10.0.0.1', NODE_IP, 22), OPTS);
  t.equal(r.verdict, 'REJECT', 'X2 runs first because of -I');
  t.equal(tracePacket(rs, fwd('10.0.0.1', NODE_IP, 23), OPTS).verdict, 'DROP', '-I 4 put DROP before ACCEPT');
});

t.test('MARK arithmetic and mark matches', async (t) => {
  const rs = parseIptablesRules(`*mangle
-A PREROUTING -j MARK --set-mark 0xff
-A PREROUTING -j MARK --set-xmark 0x10/0xf0
-A PREROUTING -j MARK --and-mark 0x1e
-A PREROUTING -j MARK --xor-mark 0x3
-A PREROUTING -j MARK --or-mark 0x100
-A PREROUTING -m mark --mark 0x11d -j ACCEPT
-A PREROUTING -j DROP
COMMIT
`);
  const r = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS);
  t.same(r.paths[0]?.steps.map((s) => s.action), ['MARK 0xff', 'MARK 0x1f', 'MARK 0x1e', 'MARK 0x1d', 'MARK 0x11d', 'ACCEPT']);
  t.equal(r.paths[0]?.mark, 0x11d);
  t.equal(r.verdict, 'ACCEPT');
});

t.test('interfaces and unknown matches are assumptions recorded in the steps', async (t) => {
  const rs = parseIptablesRules(`*filter
-A FORWARD -i eth0 -j DROP
-A FORWARD -m physdev --physdev-in veth1 -j DROP
-A FORWARD -p tcp --sport 1000 -j DROP
-A FORWARD ! -o eth1 -p tcp --dport 80 -j REJECT
COMMIT
`);
  const r = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS);
  t.equal(r.verdict, 'REJECT', 'the negated interface match is assumed to match');
  const steps = r.paths[0]?.steps ?? [];
  t.same(steps.map((s) => s.action), ['no match', 'no match', 'no match', 'REJECT']);
  t.match(steps[0]?.notes?.[0], /-i eth0: input interface eth0 cannot be known, assumed no match/);
  t.same(steps[1]?.notes, ['unknown match physdev, assumed no match']);
  t.match(steps[2]?.notes?.[0], /source port not given/);
  t.match(steps[3]?.notes?.[0], /! -o eth1: .*assumed match/);
  const withSport = tracePacket(rs, { ...fwd('1.1.1.1', '2.2.2.2', 80), sport: 1000 }, OPTS);
  t.equal(withSport.verdict, 'DROP', 'a given source port is matched');
  t.equal(tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 81), OPTS).verdict, 'ACCEPT');
});

t.test('IPv6 rules and multiport', async (t) => {
  const rs = parseIptablesRules(`*nat
:KUBE-SEP-V6 - [0:0]
-A PREROUTING -d fd00:10::10/128 -p tcp -m multiport --dports 80,443,8000:8100 -j KUBE-SEP-V6
-A KUBE-SEP-V6 -s fd00:1::/64 -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SEP-V6 -p tcp -j DNAT --to-destination [fd00::1]:8080
COMMIT
`);
  const r = tracePacket(rs, fwd('fd00:1::5', 'fd00:10::10', 8050), { localAddresses: ['fd00:99::1'] });
  t.same(r.endpoints, [{ address: 'fd00::1', port: 8080, probability: 1 }]);
  t.equal(r.paths[0]?.mark, 0x4000);
  t.same(tracePacket(rs, fwd('fd00:1::5', 'fd00:10::10', 8200), OPTS).endpoints, [], 'port outside the multiport list');
  t.same(tracePacket(rs, fwd('10.0.0.1', '10.0.0.2', 80), OPTS).endpoints, [], 'IPv4 packet does not match IPv6 rules');
});

t.test('formatTrace explains endpoints, masquerade and who rejected', async (t) => {
  const three = formatTrace(trace(fwd('203.0.113.7', '10.96.0.30', 53, 'udp')));
  t.match(three, /Verdict: ACCEPT \(3 paths\)/);
  t.match(three, /10\.244\.2\.1:5353 {2}33\.3%/);
  t.match(three, /Masquerade: always/);
  t.match(three, /\[nat\/KUBE-SVC-DDDDDDDDDDDDDDDD\] "ns\/three:dns -> 10\.244\.2\.1:5353" → jump KUBE-SEP-EEEEEEEEEEEEEEEE/);
  t.match(three, /masquerade: yes/);

  const rejected = formatTrace(trace(fwd('10.244.9.9', '10.96.0.20', 80)));
  t.match(rejected, /Verdict: REJECT/);
  t.match(rejected, /Endpoints: none/);
  t.match(rejected, /Rejected by filter\/KUBE-SERVICES: -A KUBE-SERVICES .* -j REJECT \(comment: "ns\/none:http has no endpoints"\)/);

  const hairpin = formatTrace(trace(fwd('10.244.1.2', '10.96.0.10', 80)));
  t.match(hairpin, /Masquerade: on some accepted paths only/);
  t.match(hairpin, /Path 1 of 2 \(50%\): ACCEPT, DNAT to 10\.244\.1\.2:8080, masquerade: yes/);
  t.match(hairpin, /Path 2 of 2 \(50%\): ACCEPT, DNAT to 10\.244\.1\.3:8080, masquerade: no/);

  const dropped = formatTrace(tracePacket(parseIptablesRules('*filter\n:FORWARD DROP [0:0]\nCOMMIT\n'), fwd('1.1.1.1', '2.2.2.2', 1), OPTS));
  t.match(dropped, /Dropped by the DROP policy of filter\/FORWARD/);
});

t.test('a statistic rule in front of DROP gives a MIXED verdict', async (t) => {
  const rs = parseIptablesRules(`*filter
-A FORWARD -p 6 --dport 80 -m statistic --mode random --probability 0.25 -j DROP
COMMIT
`);
  const r = tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS);
  t.equal(r.verdict, 'MIXED');
  t.same(r.paths.map((p) => [p.verdict, p.probability]), [['DROP', 0.25], ['ACCEPT', 0.75]]);
  t.equal(r.masquerade, 'never');
  t.match(formatTrace(r), /Verdict: MIXED \(2 paths\)\n {2}DROP 25%, ACCEPT 75%/);
  t.equal(tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 80), OPTS).paths.length, 2, 'tracing does not change the ruleset');
  t.equal(tracePacket(rs, fwd('1.1.1.1', '2.2.2.2', 81), OPTS).verdict, 'ACCEPT');
});

t.test('invalid packets are refused', async (t) => {
  t.throws(() => trace(fwd('not-an-ip', '10.96.0.10', 80)), /invalid source address "not-an-ip"/);
  t.throws(() => trace(fwd('10.0.0.1', 'fd00::1', 80)), /not the same IP family/);
  t.throws(() => trace(fwd('10.0.0.1', '10.96.0.10', 70000)), /invalid destination port 70000/);
});
