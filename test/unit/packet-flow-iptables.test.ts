/**
 * The behaviour table: render a cluster, then trace packets through the
 * rendered iptables-restore text and check where each one goes.
 */
import t from 'tap';
import type { Test } from 'tap';
import { renderFull, DEFAULT_RENDER_CONFIG } from '../../src/backends/iptables/render.js';
import type { RenderConfig } from '../../src/backends/iptables/render.js';
import { JUMP_RULES, sepChain, svcChain, svlChain } from '../../src/backends/iptables/names.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import { tracePacket } from '../../src/trace/iptables/trace.js';
import type { TracePacket } from '../../src/trace/iptables/trace.js';
import { service, slice, snapshotOf } from '../helpers/model.js';

const NODE_IP = '203.0.113.1';
const CLIENT = '203.0.113.2';
const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const OTHER_POD = '10.244.1.9';

const tcp = (name: string, port: number, nodePort = 0, target = 8080) => ({ name, protocol: 'TCP' as const, port, nodePort, targetPort: target });

const snapshot = snapshotOf(
  [
    service({ name: 'web', type: 'LoadBalancer', clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['198.51.100.10'], externalIPs: ['192.0.2.50'], ports: [tcp('http', 80, 30080)] }),
    service({ name: 'dns', clusterIPs: ['10.96.0.53'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0, targetPort: 5353 }] }),
    service({ name: 'empty', type: 'NodePort', clusterIPs: ['10.96.0.20'], ports: [tcp('http', 80, 30020)] }),
    service({ name: 'docs', type: 'ExternalName', clusterIPs: [] }),
    service({ name: 'headless', headless: true, clusterIPs: [] }),
    service({ name: 'sctp', clusterIPs: ['10.96.0.30'], ports: [{ name: 'x', protocol: 'SCTP', port: 9, nodePort: 0, targetPort: 9 }] }),
    service({ name: 'rolling', clusterIPs: ['10.96.0.40'] }),
  ],
  [
    slice('web', [{ ip: POD_A }, { ip: POD_B }]),
    slice('dns', [{ ip: POD_A }, { ip: POD_B }], { ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
    slice('headless', [{ ip: POD_A }]),
    slice('sctp', [{ ip: '10.244.1.4' }], { ports: [{ name: 'x', protocol: 'SCTP', port: 9 }] }),
    slice('rolling', [
      { ip: '10.244.1.5', ready: false, serving: true, terminating: true },
      { ip: '10.244.1.6', ready: false, serving: false, terminating: true },
    ]),
  ],
);

function rulesFor(cfg: Partial<RenderConfig>) {
  const { text } = renderFull(snapshot, { ...DEFAULT_RENDER_CONFIG, ...cfg }, { missingJumps: JUMP_RULES, staleServiceChains: [] });
  return { text, rules: parseIptablesRules(text) };
}

interface Case {
  what: string;
  packet: TracePacket;
  /** endpoint `ip:port` → probability; omitted when no DNAT is expected */
  endpoints?: Record<string, number>;
  verdict: 'ACCEPT' | 'REJECT' | 'DROP';
  masquerade?: 'always' | 'never' | 'some';
}

const fromNode = (dst: string, dport: number, proto: TracePacket['proto'] = 'tcp'): TracePacket => ({ origin: 'local', src: NODE_IP, dst, dport, proto });
const from = (src: string, dst: string, dport: number, proto: TracePacket['proto'] = 'tcp'): TracePacket => ({ origin: 'forward', src, dst, dport, proto });
const WEB = { [`${POD_A}:8080`]: 0.5, [`${POD_B}:8080`]: 0.5 };

const withClusterCIDR: Case[] = [
  { what: 'ClusterIP from the node', packet: fromNode('10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'ClusterIP from a pod', packet: from(OTHER_POD, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'a pod reaching itself through its service (hairpin)', packet: from(POD_B, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'some' },
  { what: 'ClusterIP, wrong port', packet: from(OTHER_POD, '10.96.0.10', 81), verdict: 'ACCEPT' },
  { what: 'NodePort from outside', packet: from(CLIENT, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'NodePort from the node itself', packet: fromNode(NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'LoadBalancer IP from outside', packet: from(CLIENT, '198.51.100.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'external IP from outside', packet: from(CLIENT, '192.0.2.50', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'UDP ClusterIP from a pod', packet: from(OTHER_POD, '10.96.0.53', 53, 'udp'), endpoints: { [`${POD_A}:5353`]: 0.5, [`${POD_B}:5353`]: 0.5 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'TCP to a UDP-only service port is not touched', packet: from(OTHER_POD, '10.96.0.53', 53, 'tcp'), verdict: 'ACCEPT' },
  { what: 'SCTP ClusterIP', packet: from(OTHER_POD, '10.96.0.30', 9, 'sctp'), endpoints: { '10.244.1.4:9': 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'no endpoints: ClusterIP from a pod is rejected', packet: from(OTHER_POD, '10.96.0.20', 80), verdict: 'REJECT' },
  { what: 'no endpoints: ClusterIP from the node is rejected', packet: fromNode('10.96.0.20', 80), verdict: 'REJECT' },
  { what: 'no endpoints: NodePort from outside is rejected', packet: from(CLIENT, NODE_IP, 30020), verdict: 'REJECT' },
  { what: 'only terminating endpoints: the serving one is used', packet: from(OTHER_POD, '10.96.0.40', 80), endpoints: { '10.244.1.5:8080': 1 }, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'a port that is no NodePort', packet: from(CLIENT, NODE_IP, 30081), verdict: 'ACCEPT' },
];

function check(t: Test, rules: ReturnType<typeof parseIptablesRules>, c: Case, localAddresses: string[] = [NODE_IP]): void {
  const r = tracePacket(rules, c.packet, { localAddresses });
  t.equal(r.verdict, c.verdict, 'verdict');
  const got: Record<string, number> = {};
  for (const e of r.endpoints) got[`${e.address}:${e.port}`] = Math.round(e.probability * 1000) / 1000;
  t.same(got, c.endpoints ?? {}, 'endpoints and probabilities');
  if (c.masquerade) t.equal(r.masquerade, c.masquerade, 'masquerade');
}

t.test('with --cluster-cidr', async (t) => {
  const { rules } = rulesFor({ clusterCIDR: '10.244.0.0/16' });
  for (const c of withClusterCIDR) t.test(c.what, async (t) => check(t, rules, c));
});

t.test('hairpin masquerade happens exactly on the path back to the sender', async (t) => {
  const { rules } = rulesFor({ clusterCIDR: '10.244.0.0/16' });
  const r = tracePacket(rules, from(POD_B, '10.96.0.10', 80), { localAddresses: [NODE_IP] });
  for (const p of r.paths) t.equal(p.masquerade, p.dnat?.address === POD_B, `path to ${p.dnat?.address}`);
});

t.test('with --masquerade-all every ClusterIP connection is masqueraded', async (t) => {
  const { rules } = rulesFor({ masqueradeAll: true });
  check(t, rules, { what: 'pod', packet: from(OTHER_POD, '10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' });
});

t.test('without a cluster CIDR, ClusterIP traffic is not masqueraded (as upstream)', async (t) => {
  const { rules } = rulesFor({});
  check(t, rules, { what: 'node', packet: fromNode('10.96.0.10', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' });
  check(t, rules, { what: 'outside via NodePort still masqueraded', packet: from(CLIENT, NODE_IP, 30080), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' });
});

t.test('ExternalName and headless services leave no rules', async (t) => {
  const { text } = rulesFor({ clusterCIDR: '10.244.0.0/16' });
  t.notMatch(text, /ns\/docs/);
  t.notMatch(text, /ns\/headless/);
});

// ---------------------------------------------------------------------------
// Features: session affinity, traffic policies, topology, source ranges,
// NodePort addresses, localhost NodePorts, large-cluster mode, IPv6.
// ---------------------------------------------------------------------------

const NODE_IP2 = '192.0.2.1';
const OUTSIDER = '198.18.0.5';
const REMOTE_1 = '10.244.2.2';
const REMOTE_2 = '10.244.3.2';
const CIDR = '10.244.0.0/16';

const features = snapshotOf(
  [
    service({ name: 'sticky', clusterIPs: ['10.96.1.1'], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 600 }),
    service({
      name: 'local-ext',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.2.1'],
      loadBalancerIPs: ['198.51.100.20'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      ports: [tcp('http', 80, 30200)],
    }),
    service({
      name: 'local-none',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.3.1'],
      loadBalancerIPs: ['198.51.100.30'],
      externalIPs: ['192.0.2.60'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32001,
      ports: [tcp('http', 80, 30300)],
    }),
    service({ name: 'itp-local', clusterIPs: ['10.96.4.1'], internalTrafficPolicy: 'Local' }),
    service({ name: 'itp-none', clusterIPs: ['10.96.5.1'], internalTrafficPolicy: 'Local' }),
    service({ name: 'zoned', clusterIPs: ['10.96.6.1'] }),
    service({ name: 'half-hinted', clusterIPs: ['10.96.6.2'] }),
    service({ name: 'node-hinted', clusterIPs: ['10.96.6.3'] }),
    service({ name: 'ranged', type: 'LoadBalancer', clusterIPs: ['10.96.7.1'], loadBalancerIPs: ['198.51.100.40'], loadBalancerSourceRanges: ['203.0.113.0/25'], ports: [tcp('http', 80, 30700)] }),
    service({ name: 'np', type: 'NodePort', clusterIPs: ['10.96.8.1'], ports: [tcp('http', 80, 30800)] }),
    service({ name: 'np-empty', type: 'NodePort', clusterIPs: ['10.96.8.2'], ports: [tcp('http', 80, 30801)] }),
  ],
  [
    slice('sticky', [{ ip: POD_A }, { ip: POD_B }]),
    slice('local-ext', [{ ip: POD_A }, { ip: REMOTE_1, node: 'node-2' }]),
    slice('local-none', [{ ip: REMOTE_1, node: 'node-2' }]),
    slice('itp-local', [{ ip: POD_A }, { ip: REMOTE_1, node: 'node-2' }]),
    slice('itp-none', [{ ip: REMOTE_1, node: 'node-2' }]),
    slice('zoned', [
      { ip: POD_A, zone: 'zone-a', forZones: ['zone-a'] },
      { ip: REMOTE_1, node: 'node-2', zone: 'zone-a', forZones: ['zone-a'] },
      { ip: REMOTE_2, node: 'node-3', zone: 'zone-b', forZones: ['zone-b'] },
    ]),
    slice('half-hinted', [
      { ip: POD_A, zone: 'zone-a', forZones: ['zone-a'] },
      { ip: REMOTE_2, node: 'node-3', zone: 'zone-b' },
    ]),
    slice('node-hinted', [
      { ip: POD_A, forNodes: ['node-1'], forZones: ['zone-a'] },
      { ip: REMOTE_1, node: 'node-2', forNodes: ['node-2'], forZones: ['zone-a'] },
    ]),
    slice('ranged', [{ ip: POD_A }, { ip: POD_B }]),
    slice('np', [{ ip: POD_A }]),
  ],
);

const FEATURES_CFG: Partial<RenderConfig> = { clusterCIDR: CIDR, nodeName: 'node-1', nodeZone: 'zone-a', nodeIP: NODE_IP };

function featureRules(cfg: Partial<RenderConfig> = {}, extra = '') {
  const { text } = renderFull(features, { ...DEFAULT_RENDER_CONFIG, ...FEATURES_CFG, ...cfg }, { missingJumps: JUMP_RULES, staleServiceChains: [] });
  return { text, rules: parseIptablesRules(text + extra) };
}

const onlyA = { [`${POD_A}:8080`]: 1 };
const aAndRemote = { [`${POD_A}:8080`]: 0.5, [`${REMOTE_1}:8080`]: 0.5 };
const onlyRemote = { [`${REMOTE_1}:8080`]: 1 };
const third = Math.round(1000 / 3) / 1000;

const featureCases: Case[] = [
  // Session affinity: without a recorded source, the first packet is spread as usual.
  { what: 'affinity: the first packet is load balanced', packet: from(OTHER_POD, '10.96.1.1', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
  // externalTrafficPolicy=Local.
  { what: 'eTP Local: NodePort from outside reaches only the local endpoint, source kept', packet: from(CLIENT, NODE_IP, 30200), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: LoadBalancer IP from outside reaches only the local endpoint, source kept', packet: from(CLIENT, '198.51.100.20', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: a pod reaching the LB IP is short-circuited to every endpoint', packet: from(OTHER_POD, '198.51.100.20', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local: the node reaching its NodePort goes to every endpoint, masqueraded', packet: fromNode(NODE_IP, 30200), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local: the ClusterIP still uses every endpoint', packet: from(OTHER_POD, '10.96.2.1', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local, no local endpoint: NodePort from outside is dropped', packet: from(CLIENT, NODE_IP, 30300), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: LB IP from outside is dropped', packet: from(CLIENT, '198.51.100.30', 80), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: external IP from outside is dropped', packet: from(CLIENT, '192.0.2.60', 80), verdict: 'DROP' },
  { what: 'eTP Local, no local endpoint: a pod reaching the LB IP still gets the remote endpoint', packet: from(OTHER_POD, '198.51.100.30', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'eTP Local, no local endpoint: the node reaching its NodePort gets the remote endpoint, masqueraded', packet: fromNode(NODE_IP, 30300), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'eTP Local, no local endpoint: the ClusterIP works', packet: from(OTHER_POD, '10.96.3.1', 80), endpoints: onlyRemote, verdict: 'ACCEPT', masquerade: 'never' },
  // internalTrafficPolicy=Local.
  { what: 'iTP Local: a pod reaches only the local endpoint', packet: from(OTHER_POD, '10.96.4.1', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'iTP Local: the node reaches only the local endpoint, masqueraded', packet: fromNode('10.96.4.1', 80), endpoints: onlyA, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'iTP Local, no local endpoint: dropped (not rejected)', packet: from(OTHER_POD, '10.96.5.1', 80), verdict: 'DROP' },
  // Topology.
  { what: 'zone hints: only endpoints hinted for this zone', packet: from(OTHER_POD, '10.96.6.1', 80), endpoints: aAndRemote, verdict: 'ACCEPT', masquerade: 'never' },
  { what: 'zone hints missing on one endpoint: every endpoint', packet: from(OTHER_POD, '10.96.6.2', 80), endpoints: { [`${POD_A}:8080`]: 0.5, [`${REMOTE_2}:8080`]: 0.5 }, verdict: 'ACCEPT' },
  { what: 'node hints beat zone hints: only the endpoint hinted for this node', packet: from(OTHER_POD, '10.96.6.3', 80), endpoints: onlyA, verdict: 'ACCEPT' },
  // loadBalancerSourceRanges.
  { what: 'source ranges: an allowed client reaches the endpoints', packet: from(CLIENT, '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges: any other client is dropped', packet: from(OUTSIDER, '198.51.100.40', 80), verdict: 'DROP' },
  { what: 'source ranges: the node, loopback-routed with the LB IP as source, is admitted (range holds the node IP)', packet: from('198.51.100.40', '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT' },
  { what: 'source ranges do not apply to the NodePort', packet: from(OUTSIDER, NODE_IP, 30700), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'always' },
  { what: 'source ranges do not apply to the ClusterIP', packet: from(OTHER_POD, '10.96.7.1', 80), endpoints: WEB, verdict: 'ACCEPT', masquerade: 'never' },
];

t.test('features, traced', async (t) => {
  const { rules } = featureRules();
  for (const c of featureCases) t.test(c.what, async (t) => check(t, rules, c));
});

t.test('zone hints with no hint for this node\'s zone, or an unlabelled node: every endpoint', async (t) => {
  const all3 = { [`${POD_A}:8080`]: third, [`${REMOTE_1}:8080`]: third, [`${REMOTE_2}:8080`]: third };
  for (const nodeZone of ['zone-c', undefined]) {
    const { rules } = featureRules(nodeZone === undefined ? { nodeZone: '' } : { nodeZone });
    check(t, rules, { what: `zone ${nodeZone}`, packet: from(OTHER_POD, '10.96.6.1', 80), endpoints: all3, verdict: 'ACCEPT' });
  }
  const { rules: b } = featureRules({ nodeZone: 'zone-b' });
  check(t, b, { what: 'zone-b', packet: from(OTHER_POD, '10.96.6.1', 80), endpoints: { [`${REMOTE_2}:8080`]: 1 }, verdict: 'ACCEPT' });
  const { rules: other } = featureRules({ nodeName: 'node-9' });
  check(t, other, { what: 'node hints for other nodes only: zone hints apply', packet: from(OTHER_POD, '10.96.6.3', 80), endpoints: aAndRemote, verdict: 'ACCEPT' });
});

t.test('affinity: the recent --rcheck/--set pair per endpoint, checks before the random spread', async (t) => {
  const { text, rules } = featureRules();
  const sp = features.servicePorts.get('ns/sticky:http/TCP')!;
  const svc = rules.tables.get('nat')!.chains.get(svcChain(sp))!;
  const seps = sp.endpoints.map((e) => sepChain(sp, `${e.address}:${e.port}`));
  const rcheck = svc.rules.filter((r) => r.raw.includes('--rcheck'));
  t.same(
    rcheck.map((r) => r.raw.replace(/^.*?-m recent/, '-m recent')),
    seps.map((s) => `-m recent --name ${s} --rcheck --seconds 600 --reap -j ${s}`),
    'one check per endpoint, naming its own chain, with the timeout',
  );
  const firstSpread = svc.rules.findIndex((r) => r.raw.includes('-j KUBE-SEP-') && !r.raw.includes('--rcheck'));
  t.ok(rcheck.every((r) => svc.rules.indexOf(r) < firstSpread), 'checks come before the spread');
  for (const s of seps) {
    const dnat = rules.tables.get('nat')!.chains.get(s)!.rules.find((r) => r.target?.name === 'DNAT')!;
    t.match(dnat.raw, new RegExp(`-m recent --name ${s} --set -m tcp -p tcp -j DNAT`), `${s} records the source`);
  }
  const r = tracePacket(rules, from(OTHER_POD, '10.96.1.1', 80), { localAddresses: [NODE_IP] });
  for (const p of r.paths) {
    t.equal(p.steps.filter((st) => st.chain === svcChain(sp) && st.rule.includes('--rcheck')).length, 2, 'every path passes both checks');
  }
  t.notMatch(featureRules().text.split('\n').filter((l) => l.includes('ns/web')).join('\n'), /recent/);
  t.equal((text.match(/--rcheck/g) ?? []).length, 2, 'no other service gets affinity rules');
});

t.test('iTP Local: the masquerade rule is in the local policy chain', async (t) => {
  const { rules } = featureRules();
  const sp = features.servicePorts.get('ns/itp-local:http/TCP')!;
  const nat = rules.tables.get('nat')!;
  t.match(nat.chains.get(svlChain(sp))!.rules[0]!.raw, /-d 10\.96\.4\.1 --dport 80 ! -s 10\.244\.0\.0\/16 -j KUBE-MARK-MASQ/);
  t.notOk(nat.chains.has(svcChain(sp)), 'no cluster policy chain');
});

t.test('health check node port is accepted in filter, whether or not there are local endpoints', async (t) => {
  // With an INPUT policy of DROP, only what our rules ACCEPT gets in.
  const { rules } = featureRules({}, '*filter\n-P INPUT DROP\nCOMMIT\n');
  for (const port of [32000, 32001]) check(t, rules, { what: `${port}`, packet: from(CLIENT, NODE_IP, port), verdict: 'ACCEPT' });
  check(t, rules, { what: 'another port', packet: from(CLIENT, NODE_IP, 32002), verdict: 'DROP' });
  const r = tracePacket(rules, from(CLIENT, NODE_IP, 32000), { localAddresses: [NODE_IP] });
  t.ok(r.paths[0]!.steps.some((s) => s.comment === 'ns/local-ext:http health check node port' && s.action === 'ACCEPT'));
});

t.test('source ranges: the LB IP as source is refused when the ranges do not hold the node IP', async (t) => {
  const { rules } = featureRules({ nodeIP: NODE_IP2 });
  check(t, rules, { what: 'lb ip as source', packet: from('198.51.100.40', '198.51.100.40', 80), verdict: 'DROP' });
  check(t, rules, { what: 'allowed client', packet: from(CLIENT, '198.51.100.40', 80), endpoints: WEB, verdict: 'ACCEPT' });
});

t.test('nodePortAddresses: only the listed node IPs are NodePorts', async (t) => {
  const locals = [NODE_IP, NODE_IP2];
  const np = { [`${POD_A}:8080`]: 1 };
  const all = featureRules({});
  check(t, all.rules, { what: 'all: first IP', packet: from(CLIENT, NODE_IP, 30800), endpoints: np, verdict: 'ACCEPT' }, locals);
  check(t, all.rules, { what: 'all: second IP', packet: from(CLIENT, NODE_IP2, 30800), endpoints: np, verdict: 'ACCEPT' }, locals);
  const listed = featureRules({ nodePortAddresses: [NODE_IP] });
  check(t, listed.rules, { what: 'listed IP', packet: from(CLIENT, NODE_IP, 30800), endpoints: np, verdict: 'ACCEPT' }, locals);
  check(t, listed.rules, { what: 'unlisted IP', packet: from(CLIENT, NODE_IP2, 30800), verdict: 'ACCEPT' }, locals);
  check(t, listed.rules, { what: 'the node, listed IP', packet: fromNode(NODE_IP, 30800), endpoints: np, verdict: 'ACCEPT', masquerade: 'always' }, locals);
  t.match(listed.text, /-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 203\.0\.113\.1 -j KUBE-NODEPORTS\n/);
  t.notMatch(listed.text, /--dst-type LOCAL -j KUBE-NODEPORTS/);
  // As upstream, the REJECT of a NodePort without endpoints is per local address type, not per listed IP.
  check(t, listed.rules, { what: 'no endpoints, unlisted IP', packet: from(CLIENT, NODE_IP2, 30801), verdict: 'REJECT' }, locals);
  const none = featureRules({ nodePortAddresses: [] });
  check(t, none.rules, { what: 'no address matched: no NodePorts at all', packet: from(CLIENT, NODE_IP, 30800), verdict: 'ACCEPT' }, locals);
});

t.test('localhost NodePorts', async (t) => {
  const lo = (dport: number): TracePacket => ({ origin: 'local', src: '127.0.0.1', dst: '127.0.0.1', dport, proto: 'tcp' });
  const np = { [`${POD_A}:8080`]: 1 };
  const on = featureRules();
  check(t, on.rules, { what: 'on: 127.0.0.1:NodePort from the node', packet: lo(30800), endpoints: np, verdict: 'ACCEPT', masquerade: 'always' });
  check(t, on.rules, { what: 'on: the network reaching 127.0.0.1 is dropped by the guard', packet: from(CLIENT, '127.0.0.1', 10248), verdict: 'DROP' });
  check(t, on.rules, { what: 'on: the node reaching its own loopback is not', packet: lo(10248), verdict: 'ACCEPT' });
  t.match(on.text, /-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127\.0\.0\.0\/8 ! -s 127\.0\.0\.0\/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n/);
  t.match(on.text, /--dst-type LOCAL -j KUBE-NODEPORTS\n/);
  const off = featureRules({ localhostNodePorts: false });
  check(t, off.rules, { what: 'off: 127.0.0.1:NodePort is no NodePort', packet: lo(30800), verdict: 'ACCEPT' });
  check(t, off.rules, { what: 'off: the node IP still is', packet: fromNode(NODE_IP, 30800), endpoints: np, verdict: 'ACCEPT' });
  check(t, off.rules, { what: 'off: no guard', packet: from(CLIENT, '127.0.0.1', 10248), verdict: 'ACCEPT' });
  t.match(off.text, /--dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS\n/);
  t.notMatch(off.text, /block incoming localnet/);
  const listed = featureRules({ nodePortAddresses: [NODE_IP] });
  t.notMatch(listed.text, /block incoming localnet/, 'no loopback NodePort address: no guard either');
  const withLo = featureRules({ nodePortAddresses: [NODE_IP, '127.0.0.1'] });
  check(t, withLo.rules, { what: 'listed loopback', packet: lo(30800), endpoints: np, verdict: 'ACCEPT' });
  t.match(withLo.text, /block incoming localnet/);
  const withLoOff = featureRules({ nodePortAddresses: [NODE_IP, '127.0.0.1'], localhostNodePorts: false });
  check(t, withLoOff.rules, { what: 'listed loopback, localhost NodePorts off', packet: lo(30800), verdict: 'ACCEPT' });
});

t.test('large-cluster mode leaves out the per-endpoint comments, and only those', async (t) => {
  const trace = (cfg: Partial<RenderConfig>) => tracePacket(featureRules(cfg).rules, from(OTHER_POD, '10.96.1.1', 80), { localAddresses: [NODE_IP] });
  const endpointSteps = (r: ReturnType<typeof trace>) => r.paths.flatMap((p) => p.steps).filter((s) => /^KUBE-S(VC|EP)-/.test(s.chain));
  const large = trace({ largeClusterMode: true });
  t.same(Object.fromEntries(large.endpoints.map((e) => [`${e.address}:${e.port}`, e.probability])), WEB, 'same endpoints');
  t.ok(endpointSteps(large).length >= 6);
  t.ok(endpointSteps(large).every((s) => s.comment === undefined), 'no comment on SVC -> SEP and SEP rules');
  t.ok(large.paths[0]!.steps.some((s) => s.chain === 'KUBE-SERVICES' && s.comment === 'ns/sticky:http cluster IP'), 'KUBE-SERVICES keeps its comments');
  const normal = trace({});
  t.ok(endpointSteps(normal).every((s) => s.comment !== undefined && s.comment.startsWith('ns/sticky:http')), 'normally every one has a comment');
  const { text } = featureRules({ largeClusterMode: true });
  t.notMatch(text, /-A KUBE-SEP-\S+ -m comment/);
  t.notMatch(text, / -> 10\.244/);
  t.match(text, /masquerade traffic for ns\/ranged:http external destinations/);
});

t.test('IPv6: the same renderer, for ip6tables', async (t) => {
  const V6_NODE = '2001:db8::1';
  const V6_CLIENT = '2001:db8::2';
  const V6_POD = 'fd00:10:244:1::9';
  const v6 = snapshotOf(
    [
      service({ name: 'web6', type: 'LoadBalancer', clusterIPs: ['fd00:10:96::10'], loadBalancerIPs: ['2001:db8:1::10'], loadBalancerSourceRanges: ['2001:db8::/64'], ports: [tcp('http', 80, 30080)] }),
      service({ name: 'local6', type: 'NodePort', clusterIPs: ['fd00:10:96::20'], externalTrafficPolicy: 'Local', ports: [tcp('http', 80, 30090)] }),
      service({ name: 'empty6', clusterIPs: ['fd00:10:96::30'] }),
    ],
    [
      slice('web6', [{ ip: 'fd00:10:244:1::2' }, { ip: 'fd00:10:244:2::2', node: 'node-2' }], { addressType: 'IPv6' }),
      slice('local6', [{ ip: 'fd00:10:244:1::2' }, { ip: 'fd00:10:244:2::2', node: 'node-2' }], { addressType: 'IPv6' }),
    ],
    'node-1',
    'IPv6',
  );
  const cfg: RenderConfig = { ...DEFAULT_RENDER_CONFIG, family: 'IPv6', clusterCIDR: 'fd00:10:244::/48', nodeName: 'node-1', nodeIP: V6_NODE };
  const { text } = renderFull(v6, cfg, { missingJumps: JUMP_RULES, staleServiceChains: [] });
  const rules = parseIptablesRules(text);
  const both = { 'fd00:10:244:1::2:8080': 0.5, 'fd00:10:244:2::2:8080': 0.5 };
  const local = { 'fd00:10:244:1::2:8080': 1 };
  const cases: Case[] = [
    { what: 'ClusterIP from a pod', packet: from(V6_POD, 'fd00:10:96::10', 80), endpoints: both, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'ClusterIP from the node', packet: { origin: 'local', src: V6_NODE, dst: 'fd00:10:96::10', dport: 80, proto: 'tcp' }, endpoints: both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'NodePort from outside', packet: from(V6_CLIENT, V6_NODE, 30080), endpoints: both, verdict: 'ACCEPT', masquerade: 'always' },
    { what: 'LB IP from an allowed client', packet: from(V6_CLIENT, '2001:db8:1::10', 80), endpoints: both, verdict: 'ACCEPT' },
    { what: 'LB IP from another client', packet: from('2001:db8:9::1', '2001:db8:1::10', 80), verdict: 'DROP' },
    { what: 'eTP Local NodePort from outside', packet: from(V6_CLIENT, V6_NODE, 30090), endpoints: local, verdict: 'ACCEPT', masquerade: 'never' },
    { what: 'no endpoints: rejected', packet: from(V6_POD, 'fd00:10:96::30', 80), verdict: 'REJECT' },
    { what: '[::1]:NodePort is never a NodePort', packet: { origin: 'local', src: '::1', dst: '::1', dport: 30080, proto: 'tcp' }, verdict: 'ACCEPT' },
  ];
  for (const c of cases) t.test(c.what, async (t) => check(t, rules, c, [V6_NODE]));
  t.match(text, /--to-destination \[fd00:10:244:1::2\]:8080/);
  t.match(text, /-m addrtype --dst-type LOCAL ! -d ::1\/128 -j KUBE-NODEPORTS/);
  t.notMatch(text, /127\.0\.0\.0/, 'no IPv4 loopback guard');
  t.notMatch(text, /(^|[\s/])\d+\.\d+\.\d+\.\d+/m, 'no IPv4 address anywhere');
});
