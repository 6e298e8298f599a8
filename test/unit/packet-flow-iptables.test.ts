/**
 * The behaviour table: render a cluster, then trace packets through the
 * rendered iptables-restore text and check where each one goes.
 */
import t from 'tap';
import type { Test } from 'tap';
import { renderFull, DEFAULT_RENDER_CONFIG } from '../../src/backends/iptables/render.js';
import type { RenderConfig } from '../../src/backends/iptables/render.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
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

function check(t: Test, rules: ReturnType<typeof parseIptablesRules>, c: Case): void {
  const r = tracePacket(rules, c.packet, { localAddresses: [NODE_IP] });
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
