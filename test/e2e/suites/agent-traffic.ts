/**
 * End to end, as root: the built agent runs in a node network namespace and
 * programs the real kernel there (iptables or nftables, per mode); pods and
 * an outside client in their own namespaces send real TCP and UDP traffic
 * through it. The manifests are the examples/ directory.
 *
 * Run per mode by agent-traffic-iptables.test.ts / agent-traffic-nftables.test.ts.
 */
import t from 'tap';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTopology, NODE_IP, NODE_POD_SIDE_IP, nodeCmd } from '../../../scripts/netns/topology.js';
import type { ProbeResult, Topology } from '../../../scripts/netns/topology.js';
import { agentMain, repoRoot, startAgentInNode } from '../../../scripts/netns/agent.js';
import { dnatTargets, kernelState, mentions, modeArgs, needsRoot, nftRuleset, nsPrefix, rulesText, svcPort, waitForRules } from './proxy-mode.js';
import type { ProxyMode } from './proxy-mode.js';

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const CLUSTER_CIDR = '10.244.0.0/16';
const WEB = svcPort('demo/web:http');
const DNS = svcPort('demo/dns:dns/UDP');
const DOCS = svcPort('demo/docs:http');

export async function run(mode: ProxyMode): Promise<void> {
  if (!needsRoot(t, `create network namespaces and program ${mode}`)) return;

  const topo: Topology = await createTopology({
    prefix: nsPrefix('traffic', mode),
    pods: [
      { name: 'pod-a', ip: POD_A },
      { name: 'pod-b', ip: POD_B },
    ],
  });
  t.teardown(() => topo.destroy());

  const manifests = t.testdir({});
  await cp(join(repoRoot(), 'examples'), manifests, { recursive: true });

  const agentArgs = [...modeArgs(mode), `--manifests=${manifests}`, '--hostname-override=node-1', `--cluster-cidr=${CLUSTER_CIDR}`, '--iptables-min-sync-period=200ms'];
  const agent = startAgentInNode(topo, agentArgs);
  t.teardown(() => agent.stop('SIGKILL'));
  await agent.waitForSyncs(1, 30_000);

  const rules = (): Promise<string> => rulesText(topo, mode);
  const waitRules = (pred: (rules: string) => boolean, what: string): Promise<void> => waitForRules(topo, mode, pred, what, { log: () => agent.lines });
  const everything = (): Promise<string> => kernelState(topo, mode);

  /** Probes n times and returns the set of pods that answered (and every result). */
  async function probeMany(ns: string, opts: Parameters<Topology['probe']>[1], n: number): Promise<{ pods: Set<string>; results: ProbeResult[] }> {
    const results: ProbeResult[] = [];
    for (let i = 0; i < n; i++) results.push(await topo.probe(ns, { timeoutMs: 4000, ...opts }));
    return { pods: new Set(results.filter((r) => r.ok).map((r) => (r.ok ? r.pod : ''))), results };
  }

  t.test('ClusterIP from the node reaches both pods, masqueraded', async (t) => {
    const { pods, results } = await probeMany(topo.nodeNs, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 24);
    t.ok(results.every((r) => r.ok), 'every request answered');
    t.same([...pods].sort(), ['pod-a', 'pod-b'], 'load balanced over both pods');
  });

  t.test("ClusterIP from a pod keeps the pod's source address", async (t) => {
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

  t.test('NodePorts on 127.0.0.1 from the node: iptables mode only', async (t) => {
    const r = await probeMany(topo.nodeNs, { proto: 'tcp', host: '127.0.0.1', port: 30080 }, 8);
    if (mode === 'iptables') {
      // Upstream's iptables mode accepts NodePorts on localhost (--iptables-localhost-nodeports, default true; route_localnet=1).
      t.ok(r.results.every((x) => x.ok), `answered on 127.0.0.1: ${JSON.stringify(r.results.filter((x) => !x.ok))}`);
      t.same([...r.pods].sort(), ['pod-a', 'pod-b'], 'by both pods');
    } else {
      // Upstream's nftables mode never does (`ip daddr != 127.0.0.0/8` before the NodePort map): nothing listens there.
      for (const x of r.results) t.match(x, { ok: false, error: 'refused' }, `not a NodePort on 127.0.0.1: ${JSON.stringify(x)}`);
    }
    const onNodeIP = await topo.probe(topo.nodeNs, { proto: 'tcp', host: NODE_IP, port: 30080, timeoutMs: 1500 });
    t.equal(onNodeIP.ok, true, `the node reaches the NodePort on its own address: ${JSON.stringify(onNodeIP)}`);
  });

  t.test('a port a ClusterIP does not serve: rejected in nftables mode only', async (t) => {
    const r = await topo.probe(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.10', port: 81, timeoutMs: 1000 });
    if (mode === 'nftables') {
      // Upstream's nftables mode rejects traffic to the undefined ports of an active ClusterIP (cluster-ips-check).
      t.match(r, { ok: false, error: 'refused' }, `rejected: ${JSON.stringify(r)}`);
    } else {
      // Upstream's iptables mode has no such rule: the packet is routed on (here to the client, which drops it).
      t.match(r, { ok: false, error: 'timeout' }, `not proxied, no answer: ${JSON.stringify(r)}`);
    }
  });

  t.test("ExternalName services leave no rules; a service port's rules are named after it", async (t) => {
    const text = await rules();
    t.notOk(mentions(text, mode, DOCS), 'nothing for demo/docs');
    t.notMatch(text, /demo\/docs/);
    if (mode === 'iptables') {
      t.match(text, /KUBE-SVC-\w+ .*--comment "demo\/web:http cluster IP"|--comment "demo\/web:http cluster IP".*-j KUBE-SVC-/);
    } else {
      // The shared layout: the ClusterIP's dispatch element names the port, its endpoints sit in the map of its protocol.
      t.match(text, /10\.96\.0\.10 \. tcp \. 80 comment "demo\/web:http" : goto lb-internal-tcp-2\b/, 'the ClusterIP dispatches to the shared chain for two endpoints');
      t.match(text, /chain lb-internal-tcp-2 \{/);
    }
    t.same(dnatTargets(text, mode, WEB), [`${POD_A}:8080`, `${POD_B}:8080`], 'one DNAT per endpoint');
  });

  t.test('--dry-run changes nothing and --once is idempotent', async (t) => {
    const before = await everything();
    const dry = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), ...agentArgs, '--dry-run'), { timeoutMs: 60_000 });
    t.equal(dry.exitCode, 0, dry.stderr);
    if (mode === 'iptables') {
      t.match(dry.stdout, /^\*filter$/m, 'an iptables-restore input with the filter table');
      t.match(dry.stdout, /^\*nat$/m, 'and the nat table');
      t.notMatch(dry.stdout, /^-I /m, 'jump rules already present are not inserted again');
    } else {
      t.match(dry.stdout, /^add table ip kube-proxy/m, 'an nft -f transaction for the IPv4 table');
      t.match(dry.stdout, /comment "demo\/web:http" : goto lb-internal-tcp-2/);
    }
    t.equal(await everything(), before, 'the dry run changed nothing');
    const once = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), ...agentArgs, '--once'), { timeoutMs: 60_000 });
    t.equal(once.exitCode, 0, once.stderr);
    t.equal(await everything(), before, 'same rules after --once');
  });

  t.test('live updates through the manifests directory', async (t) => {
    const file = join(manifests, 'endpointslices.yaml');
    const original = await readFile(file, 'utf8');
    // Remove pod-b from the web service's slice.
    const withoutB = original.replace(/  - addresses: \[10\.244\.1\.3\]\n    conditions: \{ ready: true, serving: true, terminating: false \}\n    nodeName: node-1\n    targetRef: \{ kind: Pod, namespace: demo, name: pod-b \}\n/, '');
    t.not(withoutB, original, 'fixture edited');
    await writeFile(file, withoutB);
    await waitRules((s) => dnatTargets(s, mode, WEB).join() === `${POD_A}:8080`, 'endpoint removed');
    const after = await probeMany(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080 }, 12);
    t.same([...after.pods], ['pod-a'], 'only the remaining pod answers');

    // Delete the web service: its ClusterIP stops being proxied.
    const services = await readFile(join(manifests, 'services.yaml'), 'utf8');
    const docs = services.split(/^---$/m);
    await writeFile(join(manifests, 'services.yaml'), docs.filter((d) => !/name: web\n/.test(d)).join('---'));
    await waitRules((s) => !mentions(s, mode, WEB), 'service deleted');
    t.same(dnatTargets(await rules(), mode, WEB), [], 'its chains are gone');
    const gone = await topo.probe(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080, timeoutMs: 800 });
    t.equal(gone.ok, false, 'the NodePort no longer answers');
    const dns = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 });
    t.equal(dns.ok, true, 'other services keep working');

    // A broken file is skipped with a warning; the rest keeps its rules.
    await writeFile(join(manifests, 'broken.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: [\n');
    t.ok(await agent.waitForLine(/skipping invalid manifest object.*broken\.yaml/, 5000), 'a warning names the file');
    t.equal((await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 })).ok, true, 'rules intact');
  });

  t.test('when someone wipes the rules (a firewall reload), the canary brings them back', async (t) => {
    if (mode === 'iptables') {
      // What a firewall reload does: replace every table wholesale (no --noflush).
      const wipe = '*mangle\nCOMMIT\n*nat\nCOMMIT\n*filter\nCOMMIT\n';
      const r = await topo.exec(topo.nodeNs, ['iptables-restore'], { input: wipe });
      t.equal(r.exitCode, 0, r.stderr);
      t.notMatch(await rules(), /KUBE-/, 'wiped');
    } else {
      // What a firewall reload does: an nftables.conf starting with `flush ruleset`.
      const r = await topo.exec(topo.nodeNs, ['nft', '-f', '-'], { input: 'flush ruleset\n' });
      t.equal(r.exitCode, 0, r.stderr);
      t.equal(await rules(), '', 'wiped');
    }
    await waitRules((s) => mentions(s, mode, DNS) && (mode === 'nftables' || s.includes('KUBE-PROXY-CANARY')), 'rules restored by the canary');
    t.ok(agent.lines.some((l) => /flushed or deleted by someone else; doing a full sync/.test(l)), 'logged');
    const dns = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 });
    t.equal(dns.ok, true, 'traffic flows again');
  });

  t.test('SIGTERM exits 0 and leaves the rules in place', async (t) => {
    const code = await agent.stop('SIGTERM');
    t.equal(code, 0);
    t.ok(mentions(await rules(), mode, DNS), 'demo/dns still proxied');
  });

  t.test('--cleanup removes everything ours (both modes) and nothing else', async (t) => {
    await topo.exec(topo.nodeNs, ['iptables', '-N', 'FOREIGN'], { check: true });
    await topo.exec(topo.nodeNs, ['iptables', '-A', 'FOREIGN', '-s', '192.0.2.1', '-j', 'ACCEPT'], { check: true });
    await topo.exec(topo.nodeNs, ['iptables', '-A', 'INPUT', '-j', 'FOREIGN'], { check: true });
    await topo.exec(topo.nodeNs, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '192.0.2.0/24', '-j', 'MASQUERADE'], { check: true });
    const foreignTable = 'table ip foreign {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr 192.0.2.1 accept\n  }\n}\n';
    await topo.exec(topo.nodeNs, ['nft', '-f', '-'], { input: foreignTable, check: true });
    const r = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), '--cleanup'), { timeoutMs: 60_000 });
    t.equal(r.exitCode, 0, r.stderr);
    const after = await rulesText(topo, 'iptables');
    t.notMatch(after, /KUBE-/, 'no chain or rule of ours left in iptables');
    t.match(after, /:FOREIGN - /);
    t.match(after, /-A FOREIGN -s 192\.0\.2\.1\/32 -j ACCEPT/);
    t.match(after, /-A INPUT -j FOREIGN/);
    t.match(after, /-A POSTROUTING -s 192\.0\.2\.0\/24 -j MASQUERADE/);
    const nft = await nftRuleset(topo);
    t.notMatch(nft, /table ip6? kube-proxy/, 'no kube-proxy table left');
    t.match(nft, /table ip foreign \{[^]*ip saddr 192\.0\.2\.1 accept/, 'the foreign nftables table is untouched');
    const again = await topo.exec(topo.nodeNs, nodeCmd(agentMain(), '--cleanup'), { timeoutMs: 60_000 });
    t.equal(again.exitCode, 0, 'cleanup twice is fine');
  });
}
