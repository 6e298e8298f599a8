/**
 * End to end, as root: the built `kube-proxy-ts trace` reads the live rules
 * and addresses of the network namespace it runs in. A throwaway namespace
 * gets a veth pair (both ends inside it) with the node's addresses and rules restored by hand
 * (iptables-restore / ip6tables-restore); nothing touches the root namespace.
 * Needs `npm run build` first (dist/src/agent/main.js).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { agentMain, repoRoot } from '../../scripts/netns/agent.js';
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
const NODE_IP = '203.0.113.1';

async function inNs(cmd: string[], input?: string) {
  return execa('ip', ['netns', 'exec', NS, ...cmd], { reject: false, ...(input === undefined ? {} : { input }) });
}

async function must(cmd: string[], input?: string): Promise<void> {
  const r = await inNs(cmd, input);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stderr}`);
}

await execa('ip', ['netns', 'del', NS], { reject: false });
await execa('ip', ['netns', 'add', NS]);
t.teardown(() => execa('ip', ['netns', 'del', NS], { reject: false }));

try {
  await must(['ip', 'link', 'set', 'lo', 'up']);
  await must(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  await must(['ip', 'addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
  await must(['ip', '-6', 'addr', 'add', 'fd00::1/64', 'dev', 'eth0', 'nodad']);
  await must(['ip', 'link', 'set', 'eth0', 'up']);
  await must(['ip', 'link', 'set', 'eth1', 'up']);

  const snapshot = snapshotOf(
    [
      service({ name: 'web', type: 'NodePort', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] }),
      service({ name: 'dns', clusterIPs: ['10.96.0.53'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0, targetPort: 5353 }] }),
      service({ name: 'empty', clusterIPs: ['10.96.0.20'] }),
    ],
    [
      slice('web', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }, { ip: '10.244.1.4' }, { ip: '10.244.1.5' }]),
      slice('dns', [{ ip: '10.244.1.2' }], { ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
    ],
  );
  const rules = renderFull(snapshot, { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' }, { missingJumps: JUMP_RULES, staleServiceChains: [] }).text;
  await must(['iptables-restore', '--noflush'], rules);
  await must(['ip6tables-restore', '--noflush'], [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    '-A PREROUTING -j KUBE-SERVICES',
    '-A OUTPUT -j KUBE-SERVICES',
    '-A KUBE-SERVICES -d fd00:96::10/128 -p tcp -m tcp --dport 80 -m comment --comment "ns/web6:http cluster IP" -j DNAT --to-destination [fd00:244::2]:8080',
    'COMMIT',
    '',
  ].join('\n'));
} catch (err) {
  await execa('ip', ['netns', 'del', NS], { reject: false });
  throw err;
}

const trace = (...args: string[]) => inNs(['env', '-u', 'NODE_OPTIONS', process.execPath, main, 'trace', ...args]);

t.test('reads the live rules and addresses of its namespace', async (t) => {
  const r = await trace('--src', '203.0.113.2', '--dst', `${NODE_IP}:30080`);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /arriving from outside/);
  t.match(r.stdout, /^Rules: iptables-save \(the live rules of this network namespace\)$/m);
  t.match(r.stdout, /Local addresses: .*203\.0\.113\.1/);
  t.match(r.stdout, /^Verdict: ACCEPT \(4 paths\)$/m);
  for (const ip of ['10.244.1.2', '10.244.1.3', '10.244.1.4', '10.244.1.5']) t.match(r.stdout, new RegExp(`^  ${ip.replace(/\./g, '\\.')}:8080  25%$`, 'm'), `${ip} 25%`);
  t.match(r.stdout, /Masquerade: always/);
});

t.test('--json; a source that is an address of the namespace is sent by the host', async (t) => {
  const r = await trace('--src', NODE_IP, '--dst', '10.96.0.53:53', '--proto', 'udp', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as TraceCommandJSON;
  t.equal(doc.packet.origin, 'local');
  t.ok(doc.localAddresses.includes(NODE_IP) && doc.localAddresses.includes('fd00::1'), 'addresses from ip -j addr');
  t.equal(doc.result.verdict, 'ACCEPT');
  t.same(doc.result.endpoints, [{ address: '10.244.1.2', port: 5353, probability: 1 }]);
});

t.test('no endpoints: REJECT, still exit 0', async (t) => {
  const r = await trace('--src', '10.244.1.9', '--dst', '10.96.0.20:80');
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^Verdict: REJECT$/m);
});

t.test('IPv6 destinations read ip6tables-save', async (t) => {
  const r = await trace('--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as TraceCommandJSON;
  t.match(doc.rules.source, /^ip6tables-save/);
  t.same(doc.result.endpoints, [{ address: 'fd00:244::2', port: 8080, probability: 1 }]);
});

t.test('exit statuses of the real binary', async (t) => {
  const bad = await trace('--src', '203.0.113.2', '--dst', '10.96.0.10');
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /--dst/);
  const missing = await trace('--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--input', '/nonexistent/rules.txt', '--local-addresses', NODE_IP);
  t.equal(missing.exitCode, 1);
  t.match(missing.stderr, /cannot read the rules/);
  const saved = (await inNs(['iptables-save'])).stdout;
  const stdin = await inNs(['env', '-u', 'NODE_OPTIONS', process.execPath, main, 'trace', '--src', '203.0.113.2', '--dst', '10.96.0.10:80', '--input', '-'], saved);
  t.equal(stdin.exitCode, 0, stdin.stderr);
  t.match(stdin.stdout, /^Rules: standard input$/m);
  t.match(stdin.stdout, /10\.244\.1\.2:8080 {2}25%/);
});
