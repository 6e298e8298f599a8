/**
 * End to end, as root: the built `kube-proxy-ts trace` reads the live rules
 * and addresses of the network namespace it runs in, in both modes.
 *
 * - iptables: a throwaway namespace gets a veth pair (both ends inside it)
 *   with the node's addresses, and rules restored by hand (iptables-restore /
 *   ip6tables-restore).
 * - nftables: another one, programmed by the built agent itself
 *   (`--proxy-mode=nftables --manifests=DIR --once`: tables `ip kube-proxy`
 *   and `ip6 kube-proxy`), plus someone else's `inet firewall` table whose
 *   forward chain drops one source, so the trace must read every table.
 *
 * Nothing touches the root namespace. Needs `npm run build` first
 * (dist/src/agent/main.js).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { agentMain, repoRoot } from '../../scripts/netns/agent.js';
import { nodeCmd } from '../../scripts/netns/topology.js';
import type { TraceCommandJSON } from '../../src/agent/trace-command.js';
import { DEFAULT_RENDER_CONFIG, renderFull } from '../../src/backends/iptables/render.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
import { service, slice, snapshotOf } from '../helpers/model.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create a network namespace and restore rules in it');
  process.exit(0);
}

const main = agentMain();
if (!existsSync(join(repoRoot(), 'dist/src/agent/trace-command.js'))) {
  throw new Error('dist/src/agent/trace-command.js is missing: run npm run build first');
}

const NS = `kpt-e2e-trace-${process.pid}`;
const NFT_NS = `kpt-e2e-trace-nft-${process.pid}`;
const NODE_IP = '203.0.113.1';
const WEB_PODS = ['10.244.1.2', '10.244.1.3', '10.244.1.4', '10.244.1.5'];

async function inNs(ns: string, cmd: string[], input?: string) {
  return execa('ip', ['netns', 'exec', ns, ...cmd], { reject: false, ...(input === undefined ? {} : { input }) });
}

async function must(ns: string, cmd: string[], input?: string): Promise<void> {
  const r = await inNs(ns, cmd, input);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
}

/** A namespace with loopback and a veth pair (both ends inside), eth0 holding the node's addresses. */
async function nodeNamespace(ns: string): Promise<void> {
  await execa('ip', ['netns', 'del', ns], { reject: false });
  await execa('ip', ['netns', 'add', ns]);
  t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }));
  await must(ns, ['ip', 'link', 'set', 'lo', 'up']);
  await must(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await must(ns, ['ip', 'addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
  await must(ns, ['ip', '-6', 'addr', 'add', 'fd00::1/64', 'dev', 'eth0', 'nodad']);
  await must(ns, ['ip', 'link', 'set', 'eth0', 'up']);
  await must(ns, ['ip', 'link', 'set', 'eth1', 'up']);
}

const svc = (name: string, ip: string, type: string, port: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: { namespace: e2e, name: ${name} }\nspec:\n  type: ${type}\n  clusterIP: ${ip}\n  clusterIPs: [${ip}]\n` +
  `  ipFamilies: [${ip.includes(':') ? 'IPv6' : 'IPv4'}]\n  ports: [${port}]\n`;
const eps = (name: string, family: string, port: string, ips: string[]) =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { namespace: e2e, name: ${name}-1, labels: { kubernetes.io/service-name: ${name} } }\n` +
  `addressType: ${family}\nports: [${port}]\nendpoints:\n${ips.map((ip) => `  - { addresses: [${ip}], conditions: { ready: true }, nodeName: node-1 }\n`).join('')}`;

/** The same services as the iptables namespace's rules, for the agent. */
const MANIFESTS = [
  svc('web', '10.96.0.10', 'NodePort', '{ name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30080 }'),
  svc('dns', '10.96.0.53', 'ClusterIP', '{ name: dns, protocol: UDP, port: 53, targetPort: 5353 }'),
  svc('empty', '10.96.0.20', 'ClusterIP', '{ name: http, protocol: TCP, port: 80, targetPort: 8080 }'),
  svc('web6', 'fd00:96::10', 'ClusterIP', '{ name: http, protocol: TCP, port: 80, targetPort: 8080 }'),
  eps('web', 'IPv4', '{ name: http, protocol: TCP, port: 8080 }', WEB_PODS),
  eps('dns', 'IPv4', '{ name: dns, protocol: UDP, port: 5353 }', ['10.244.1.2']),
  eps('web6', 'IPv6', '{ name: http, protocol: TCP, port: 8080 }', ['fd00:244::2']),
].join('---\n');

const FIREWALL = `table inet firewall {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr 192.0.2.66 drop
  }
}
`;

try {
  await nodeNamespace(NS);
  const snapshot = snapshotOf(
    [
      service({ name: 'web', type: 'NodePort', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] }),
      service({ name: 'dns', clusterIPs: ['10.96.0.53'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0, targetPort: 5353 }] }),
      service({ name: 'empty', clusterIPs: ['10.96.0.20'] }),
    ],
    [
      slice('web', WEB_PODS.map((ip) => ({ ip }))),
      slice('dns', [{ ip: '10.244.1.2' }], { ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
    ],
  );
  const rules = renderFull(snapshot, { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' }, { missingJumps: JUMP_RULES, staleServiceChains: [] }).text;
  await must(NS, ['iptables-restore', '--noflush'], rules);
  await must(NS, ['ip6tables-restore', '--noflush'], [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    '-A PREROUTING -j KUBE-SERVICES',
    '-A OUTPUT -j KUBE-SERVICES',
    '-A KUBE-SERVICES -d fd00:96::10/128 -p tcp -m tcp --dport 80 -m comment --comment "ns/web6:http cluster IP" -j DNAT --to-destination [fd00:244::2]:8080',
    'COMMIT',
    '',
  ].join('\n'));

  await nodeNamespace(NFT_NS);
  const dir = t.testdir({ 'manifests.yaml': MANIFESTS });
  const agent = await inNs(NFT_NS, nodeCmd(main, '--proxy-mode=nftables', `--manifests=${dir}`, '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16,fd00:244::/64', '--once'));
  if (agent.exitCode !== 0) throw new Error(`the agent failed (exit ${agent.exitCode}): ${agent.stderr}`);
  await must(NFT_NS, ['nft', '-f', '-'], FIREWALL);
} catch (err) {
  await execa('ip', ['netns', 'del', NS], { reject: false });
  await execa('ip', ['netns', 'del', NFT_NS], { reject: false });
  throw err;
}

const traceIn = (ns: string, args: string[], input?: string) => inNs(ns, nodeCmd(main, 'trace', ...args), input);
const trace = (...args: string[]) => traceIn(NS, args);
const traceNft = (...args: string[]) => traceIn(NFT_NS, args);
const doc = (r: { stdout: string }): TraceCommandJSON => JSON.parse(r.stdout) as TraceCommandJSON;
const quarters = WEB_PODS.map((address) => ({ address, port: 8080, probability: 0.25 }));
/** The explanation's line for one of the four web endpoints. */
const quarterLine = (ip: string): RegExp => new RegExp(`^  ${ip.replace(/\./g, '\\.')}:8080  25%$`, 'm');

t.test('iptables: reads the live rules and addresses of its namespace', async (t) => {
  const r = await trace('--src', '203.0.113.2', '--dst', `${NODE_IP}:30080`);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /arriving from outside/);
  t.match(r.stdout, /^Rules: iptables-save \(the live rules of this network namespace\)$/m);
  t.match(r.stdout, /^Mode: iptables \(auto: no table ip kube-proxy\)$/m, 'auto: no nftables table of ours here');
  t.match(r.stdout, /Local addresses: .*203\.0\.113\.1/);
  t.match(r.stdout, /^Verdict: ACCEPT \(4 paths\)$/m);
  for (const ip of WEB_PODS) t.match(r.stdout, quarterLine(ip), `${ip} 25%`);
  t.match(r.stdout, /Masquerade: always/);
});

t.test('iptables: --json; a source that is an address of the namespace is sent by the host', async (t) => {
  const r = await trace('--src', NODE_IP, '--dst', '10.96.0.53:53', '--proto', 'udp', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const d = doc(r);
  t.equal(d.packet.origin, 'local');
  t.ok(d.localAddresses.includes(NODE_IP) && d.localAddresses.includes('fd00::1'), 'addresses from ip -j addr');
  t.equal(d.rules.mode, 'iptables');
  t.equal(d.result.verdict, 'ACCEPT');
  t.same(d.result.endpoints, [{ address: '10.244.1.2', port: 5353, probability: 1 }]);
});

t.test('iptables: no endpoints: REJECT, still exit 0', async (t) => {
  const r = await trace('--src', '10.244.1.9', '--dst', '10.96.0.20:80');
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^Verdict: REJECT$/m);
});

t.test('iptables: IPv6 destinations read ip6tables-save', async (t) => {
  const r = await trace('--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  t.match(doc(r).rules, { mode: 'iptables', source: /^ip6tables-save/, reason: 'auto: no table ip6 kube-proxy' });
  t.same(doc(r).result.endpoints, [{ address: 'fd00:244::2', port: 8080, probability: 1 }]);
});

t.test('exit statuses of the real binary', async (t) => {
  const bad = await trace('--src', '203.0.113.2', '--dst', '10.96.0.10');
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /--dst/);
  const mode = await trace('--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--mode', 'ipvs');
  t.equal(mode.exitCode, 2);
  t.match(mode.stderr, /--mode/);
  const missing = await trace('--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--input', '/nonexistent/rules.txt', '--local-addresses', NODE_IP);
  t.equal(missing.exitCode, 1);
  t.match(missing.stderr, /cannot read the rules/);
  const saved = (await inNs(NS, ['iptables-save'])).stdout;
  const stdin = await traceIn(NS, ['--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--input', '-'], saved);
  t.equal(stdin.exitCode, 0, stdin.stderr);
  t.match(stdin.stdout, /^Rules: standard input$/m);
  t.match(stdin.stdout, /10\.244\.1\.2:8080 {2}25%/);
});

t.test('nftables: the agent programmed it; auto and --mode nftables trace its table', async (t) => {
  for (const mode of [[], ['--mode', 'nftables']]) {
    const r = await traceNft('--src', '203.0.113.2', '--dst', `${NODE_IP}:30080`, ...mode, '--json');
    t.equal(r.exitCode, 0, r.stderr);
    const d = doc(r);
    const reason = mode.length === 0 ? 'auto: table ip kube-proxy exists' : '--mode nftables';
    t.match(d.rules, { mode: 'nftables', source: /^nft list ruleset ip, nft list ruleset inet/, reason });
    t.equal(d.packet.origin, 'forward');
    t.equal(d.result.verdict, 'ACCEPT');
    t.same(d.result.endpoints, quarters, 'four endpoints, 25% each');
    t.equal(d.result.masquerade, 'always', 'from outside the cluster CIDR');
  }
  const text = await traceNft('--src', '203.0.113.2', '--dst', '10.96.0.10:80');
  t.equal(text.exitCode, 0, text.stderr);
  t.match(text.stdout, /^Mode: nftables \(auto: table ip kube-proxy exists\)$/m);
  t.match(text.stdout, /^Verdict: ACCEPT \(4 paths\)$/m);
  for (const ip of WEB_PODS) t.match(text.stdout, quarterLine(ip), `${ip} 25%`);
});

t.test('nftables: other tables, the host as sender, no endpoints, IPv6', async (t) => {
  const dropped = await traceNft('--src', '192.0.2.66', '--dst', '10.96.0.10:80', '--json');
  t.equal(dropped.exitCode, 0, dropped.stderr);
  t.equal(doc(dropped).result.verdict, 'DROP', "inet firewall's forward chain drops it after the DNAT");

  const local = await traceNft('--src', NODE_IP, '--dst', '10.96.0.53:53', '--proto', 'udp', '--json');
  t.equal(local.exitCode, 0, local.stderr);
  t.equal(doc(local).packet.origin, 'local');
  t.same(doc(local).result.endpoints, [{ address: '10.244.1.2', port: 5353, probability: 1 }]);

  const empty = await traceNft('--src', '10.244.1.9', '--dst', '10.96.0.20:80', '--json');
  t.equal(empty.exitCode, 0, empty.stderr);
  t.equal(doc(empty).result.verdict, 'REJECT');
  t.same(doc(empty).result.endpoints, []);

  const v6 = await traceNft('--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--json');
  t.equal(v6.exitCode, 0, v6.stderr);
  t.match(doc(v6).rules, { mode: 'nftables', source: /^nft list ruleset ip6, nft list ruleset inet/, reason: 'auto: table ip6 kube-proxy exists' });
  t.same(doc(v6).result.endpoints, [{ address: 'fd00:244::2', port: 8080, probability: 1 }]);
});

t.test('nftables: a saved nft list ruleset on standard input; --mode iptables still reads iptables-save', async (t) => {
  const saved = await inNs(NFT_NS, ['nft', 'list', 'ruleset']);
  t.equal(saved.exitCode, 0, saved.stderr);
  const r = await traceIn(NS, ['--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--input', '-', '--local-addresses', NODE_IP, '--json'], saved.stdout);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(doc(r).rules, { mode: 'nftables', source: 'standard input', reason: 'auto: standard input holds nftables rules' });
  t.same(doc(r).result.endpoints, quarters);

  const ipt = await traceNft('--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--mode', 'iptables', '--json');
  t.equal(ipt.exitCode, 0, ipt.stderr);
  t.match(doc(ipt).rules, { mode: 'iptables', source: /^iptables-save/ });
  t.same(doc(ipt).result.endpoints, [], 'no kube-proxy iptables rules in the nftables namespace');
});
