/**
 * End to end, as root: the built agent runs in a node network namespace and
 * programs real iptables there; pods and an outside client in their own
 * namespaces send real TCP and UDP traffic through it.
 */
import t from 'tap';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTopology, NODE_IP, NODE_POD_SIDE_IP, nodeCmd } from '../../scripts/netns/topology.js';
import type { ProbeResult, Topology } from '../../scripts/netns/topology.js';
import { agentMain, repoRoot, startAgentInNode } from '../../scripts/netns/agent.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program iptables');
  process.exit(0);
}

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const CLUSTER_CIDR = '10.244.0.0/16';

const topo: Topology = await createTopology({
  prefix: `kpt-e2e-ipt-${process.pid}`,
  pods: [
    { name: 'pod-a', ip: POD_A },
    { name: 'pod-b', ip: POD_B },
  ],
});
t.teardown(() => topo.destroy());

const manifests = t.testdir({});
await cp(join(repoRoot(), 'examples'), manifests, { recursive: true });

const agentArgs = ['--proxy-mode=iptables', `--manifests=${manifests}`, '--hostname-override=node-1', `--cluster-cidr=${CLUSTER_CIDR}`, '--iptables-min-sync-period=200ms'];
const agent = startAgentInNode(topo, agentArgs);
t.teardown(() => agent.stop('SIGKILL'));
await agent.waitForSyncs(1);

const save = async (): Promise<string> => (await topo.exec(topo.nodeNs, ['iptables-save'], { check: true })).stdout;

/** Probes n times and returns the set of pods that answered (and every result). */
async function probeMany(ns: string, opts: Parameters<Topology['probe']>[1], n: number): Promise<{ pods: Set<string>; results: ProbeResult[] }> {
  const results: ProbeResult[] = [];
  for (let i = 0; i < n; i++) results.push(await topo.probe(ns, { timeoutMs: 1500, ...opts }));
  return { pods: new Set(results.filter((r) => r.ok).map((r) => (r.ok ? r.pod : ''))), results };
}

async function waitForRules(pred: (save: string) => boolean, what: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (pred(await save())) return;
    await sleep(100);
  }
  throw new Error(`rules never reached the kernel: ${what}\n${await save()}`);
}

t.test('ClusterIP from the node reaches both pods, masqueraded', async (t) => {
  const { pods, results } = await probeMany(topo.nodeNs, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 24);
  t.ok(results.every((r) => r.ok), 'every request answered');
  t.same([...pods].sort(), ['pod-a', 'pod-b'], 'load balanced over both pods');
});

t.test('ClusterIP from a pod keeps the pod\'s source address', async (t) => {
  const r = await probeMany(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 24);
  const toB = r.results.filter((x) => x.ok && x.pod === 'pod-b');
  t.ok(toB.length > 0, 'some requests reached the other pod');
  for (const x of toB) if (x.ok) t.equal(x.from, POD_A, 'not masqueraded');
});

t.test('a pod reaching itself through its own service is hairpin-masqueraded', async (t) => {
  const r = await probeMany(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 24);
  const self = r.results.filter((x) => x.ok && x.pod === 'pod-a');
  t.ok(self.length > 0, 'some requests came back to the sender');
  for (const x of self) if (x.ok) t.equal(x.from, NODE_POD_SIDE_IP, 'masqueraded to the node');
  t.ok(r.results.every((x) => x.ok), 'no request lost');
});

t.test('NodePort and LoadBalancer IP from outside reach the pods', async (t) => {
  const np = await probeMany(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080 }, 16);
  t.ok(np.results.every((r) => r.ok), 'NodePort answered');
  t.same([...np.pods].sort(), ['pod-a', 'pod-b']);
  for (const r of np.results) if (r.ok) t.equal(r.from, NODE_POD_SIDE_IP, 'external traffic is masqueraded (policy Cluster)');
  const lb = await probeMany(topo.clientNs, { proto: 'tcp', host: '198.51.100.10', port: 80 }, 16);
  t.ok(lb.results.every((r) => r.ok), 'LoadBalancer IP answered');
  t.same([...lb.pods].sort(), ['pod-a', 'pod-b']);
});

t.test('UDP ClusterIP', async (t) => {
  const r = await probeMany(topo.pod('pod-b').ns, { proto: 'udp', host: '10.96.0.53', port: 53 }, 12);
  t.ok(r.results.every((x) => x.ok), 'every datagram answered');
  t.ok(r.pods.size >= 1);
});

t.test('a service without endpoints is refused at once', async (t) => {
  const fromClient = await topo.probe(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30020, timeoutMs: 3000 });
  t.match(fromClient, { ok: false, error: 'refused' }, 'NodePort refused');
  if (!fromClient.ok) t.ok(fromClient.ms < 1000, `refused in ${fromClient.ms} ms`);
  const fromPod = await topo.probe(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.20', port: 80, timeoutMs: 3000 });
  t.match(fromPod, { ok: false, error: 'refused' }, 'ClusterIP refused');
  const fromNode = await topo.probe(topo.nodeNs, { proto: 'tcp', host: '10.96.0.20', port: 80, timeoutMs: 3000 });
  t.match(fromNode, { ok: false, error: 'refused' }, 'ClusterIP refused from the node');
});

t.test('ExternalName services leave no rules; every service rule is commented', async (t) => {
  const rules = await save();
  t.notMatch(rules, /demo\/docs/);
  t.match(rules, /KUBE-SVC-\w+ .*--comment "demo\/web:http cluster IP"|--comment "demo\/web:http cluster IP".*-j KUBE-SVC-/);
});

t.test('--dry-run changes nothing and --once is idempotent', async (t) => {
  const before = await save();
  const dry = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), ...agentArgs, '--dry-run'));
  t.equal(dry.exitCode, 0);
  t.match(dry.stdout, /^\*filter/);
  t.notMatch(dry.stdout, /^-I /m, 'jump rules already present are not inserted again');
  const once = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), ...agentArgs, '--once'));
  t.equal(once.exitCode, 0, once.stderr);
  const strip = (s: string): string => s.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  t.equal(strip(await save()), strip(before), 'same rules after --once');
});

t.test('live updates through the manifests directory', async (t) => {
  const file = join(manifests, 'endpointslices.yaml');
  const original = await readFile(file, 'utf8');
  // Remove pod-b from the web service's slice.
  const withoutB = original.replace(/  - addresses: \[10\.244\.1\.3\]\n    conditions: \{ ready: true, serving: true, terminating: false \}\n    nodeName: node-1\n    targetRef: \{ kind: Pod, namespace: demo, name: pod-b \}\n/, '');
  t.not(withoutB, original, 'fixture edited');
  await writeFile(file, withoutB);
  await waitForRules((s) => !s.includes(`${POD_B}:8080`), 'endpoint removed');
  const after = await probeMany(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080 }, 12);
  t.same([...after.pods], ['pod-a'], 'only the remaining pod answers');

  // Delete the web service: its ClusterIP stops being proxied.
  const services = await readFile(join(manifests, 'services.yaml'), 'utf8');
  const docs = services.split(/^---$/m);
  await writeFile(join(manifests, 'services.yaml'), docs.filter((d) => !/name: web\n/.test(d)).join('---'));
  await waitForRules((s) => !s.includes('demo/web:http'), 'service deleted');
  t.notMatch(await save(), /KUBE-SEP-.*10\.244\.1\.2:8080[^]*demo\/web/, 'its chains are gone');
  const gone = await topo.probe(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080, timeoutMs: 800 });
  t.equal(gone.ok, false, 'the NodePort no longer answers');
  const dns = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 });
  t.equal(dns.ok, true, 'other services keep working');

  // A broken file is skipped with a warning; the rest keeps its rules.
  await writeFile(join(manifests, 'broken.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: [\n');
  await sleep(500);
  t.ok(agent.lines.some((l) => /skipping invalid manifest object.*broken\.yaml/.test(l)), 'warning names the file');
  t.equal((await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 })).ok, true, 'rules intact');
});

t.test('when someone wipes the rules (a firewall reload), the canary brings them back', async (t) => {
  // What a firewall reload does: replace every table wholesale (no --noflush).
  const wipe = '*mangle\nCOMMIT\n*nat\nCOMMIT\n*filter\nCOMMIT\n';
  const r = await topo.exec(topo.nodeNs, ['iptables-restore'], { input: wipe });
  t.equal(r.exitCode, 0, r.stderr);
  t.notMatch(await save(), /KUBE-/, 'wiped');
  await waitForRules((s) => s.includes('demo/dns:dns') && s.includes('KUBE-PROXY-CANARY'), 'rules restored by the canary');
  t.ok(agent.lines.some((l) => /flushed or deleted by someone else; doing a full sync/.test(l)), 'logged');
  const dns = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 });
  t.equal(dns.ok, true, 'traffic flows again');
});

t.test('SIGTERM exits 0 and leaves the rules in place', async (t) => {
  const code = await agent.stop('SIGTERM');
  t.equal(code, 0);
  t.match(await save(), /demo\/dns:dns/);
});

t.test('--cleanup removes everything ours and nothing else', async (t) => {
  await topo.exec(topo.nodeNs, ['iptables', '-N', 'FOREIGN'], { check: true });
  await topo.exec(topo.nodeNs, ['iptables', '-A', 'FOREIGN', '-s', '192.0.2.1', '-j', 'ACCEPT'], { check: true });
  await topo.exec(topo.nodeNs, ['iptables', '-A', 'INPUT', '-j', 'FOREIGN'], { check: true });
  await topo.exec(topo.nodeNs, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '192.0.2.0/24', '-j', 'MASQUERADE'], { check: true });
  const r = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), '--cleanup'));
  t.equal(r.exitCode, 0, r.stderr);
  const after = await save();
  t.notMatch(after, /KUBE-/, 'no chain or rule of ours left');
  t.match(after, /:FOREIGN - /);
  t.match(after, /-A FOREIGN -s 192\.0\.2\.1\/32 -j ACCEPT/);
  t.match(after, /-A INPUT -j FOREIGN/);
  t.match(after, /-A POSTROUTING -s 192\.0\.2\.0\/24 -j MASQUERADE/);
  const again = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), '--cleanup'));
  t.equal(again.exitCode, 0, 'cleanup twice is fine');
});


