/**
 * End to end, as root: the built agent runs in a node network namespace and
 * watches the fake API server (reached through a unix-socket bridge, so the
 * root namespace's network is never touched); real traffic keeps flowing
 * through service churn and an API server outage.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTopology, NODE_IP, nodeCmd } from '../../scripts/netns/topology.js';
import type { Topology } from '../../scripts/netns/topology.js';
import { repoRoot, startAgentInNode } from '../../scripts/netns/agent.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { apiService, apiSlice, loadDirInto } from '../helpers/api-objects.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program iptables');
  process.exit(0);
}

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';

const dir = await mkdtemp(join(tmpdir(), 'kpt-e2e-api-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const socketPath = join(dir, 'api.sock');
const api = await FakeApiServer.start({ socketPath, bookmarkIntervalMs: 500 });
t.teardown(() => api.close());
loadDirInto(api, join(repoRoot(), 'examples'));

const topo: Topology = await createTopology({
  prefix: `kpt-e2e-api-${process.pid}`,
  pods: [
    { name: 'pod-a', ip: POD_A },
    { name: 'pod-b', ip: POD_B },
  ],
});
t.teardown(() => topo.destroy());

// The API server, as the node sees it: 127.0.0.1:6443 inside the node namespace.
const bridge = topo.spawn(topo.nodeNs, nodeCmd(join(repoRoot(), 'dist/scripts/netns/unix-bridge.js'), '127.0.0.1:6443', socketPath));
await new Promise<void>((resolve, reject) => {
  bridge.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
  setTimeout(() => reject(new Error('unix bridge did not start')), 5000);
});
const kubeconfig = join(dir, 'kubeconfig');
await writeFile(
  kubeconfig,
  `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: { server: "http://127.0.0.1:6443", insecure-skip-tls-verify: true }
users:
- name: kube-proxy
  user: {}
contexts:
- name: default
  context: { cluster: fake, user: kube-proxy }
current-context: default
`,
);

const agent = startAgentInNode(topo, [
  `--kubeconfig=${kubeconfig}`,
  '--hostname-override=node-1',
  '--cluster-cidr=10.244.0.0/16',
  '--iptables-min-sync-period=200ms',
  '--healthz-bind-address=127.0.0.1:10256',
  '--metrics-bind-address=127.0.0.1:10249',
]);
t.teardown(() => agent.stop('SIGKILL'));
await agent.waitForSyncs(1, 20_000);

/** iptables-save of the node, without its timestamped comment lines. */
const save = async (): Promise<string> =>
  (await topo.exec(topo.nodeNs, ['iptables-save'], { check: true })).stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
async function waitForRules(pred: (s: string) => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred(await save())) return;
    await sleep(100);
  }
  throw new Error(`rules never reached the kernel: ${what}`);
}
async function podsAnswering(host: string, port: number, n = 12): Promise<{ pods: string[]; failures: number }> {
  const pods = new Set<string>();
  let failures = 0;
  for (let i = 0; i < n; i++) {
    const r = await topo.probe(topo.clientNs, { proto: 'tcp', host, port, timeoutMs: 1500 });
    if (r.ok) pods.add(r.pod);
    else failures++;
  }
  return { pods: [...pods].sort(), failures };
}
/** GET over HTTP from inside the node namespace. */
async function getInNode(url: string): Promise<{ status: number; body: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async r => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`;
  const r = await topo.exec(topo.nodeNs, ['env', '-u', 'NODE_OPTIONS', process.execPath, '-e', script], { check: true });
  return JSON.parse(r.stdout) as { status: number; body: string };
}

t.test('objects from the API server become working rules', async (t) => {
  t.same(await podsAnswering(NODE_IP, 30080), { pods: ['pod-a', 'pod-b'], failures: 0 }, 'NodePort from outside');
  t.same(await podsAnswering('198.51.100.10', 80), { pods: ['pod-a', 'pod-b'], failures: 0 }, 'LoadBalancer IP');
  const udp = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53 });
  t.equal(udp.ok, true, 'UDP ClusterIP');
});

t.test('service churn reaches the kernel', async (t) => {
  api.update('endpointslices', { ...apiSlice('web', [POD_A], { name: 'web-abc12' }), ports: [{ name: 'http', protocol: 'TCP', port: 8080 }] });
  await waitForRules((s) => !s.includes(`demo/web:http -> ${POD_B}:8080`), 'endpoint removed');
  t.same(await podsAnswering(NODE_IP, 30080), { pods: ['pod-a'], failures: 0 }, 'only the remaining endpoint answers');

  api.create('services', apiService('api', '10.96.0.11'));
  api.create('endpointslices', apiSlice('api', [POD_B]));
  // The Service and its EndpointSlice may arrive in different syncs: wait for the endpoint.
  await waitForRules((s) => s.includes(`demo/api:http -> ${POD_B}:8080`), 'service added');
  const r = await topo.probe(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.11', port: 80 });
  t.match(r, { ok: true, pod: 'pod-b' }, 'new service answers');

  api.delete('services', 'demo', 'dns');
  await waitForRules((s) => !s.includes('demo/dns:dns'), 'service deleted');
  t.equal((await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: '10.96.0.53', port: 53, timeoutMs: 800 })).ok, false, 'deleted service no longer answers');
});

t.test('an API server outage keeps traffic flowing; changes made during it arrive afterwards', async (t) => {
  const before = await save();
  await api.setDown(true);
  const during = await podsAnswering(NODE_IP, 30080, 20);
  t.same(during, { pods: ['pod-a'], failures: 0 }, 'traffic keeps flowing while the API server is down');
  t.equal(await save(), before, 'rules untouched during the outage');
  t.equal((await getInNode('http://127.0.0.1:10256/livez')).status, 200, 'still alive');
  api.update('endpointslices', { ...apiSlice('web', [POD_A, POD_B], { name: 'web-abc12' }), ports: [{ name: 'http', protocol: 'TCP', port: 8080 }] });
  await sleep(500);
  await api.setDown(false);
  await waitForRules((s) => s.includes(`demo/web:http -> ${POD_B}:8080`), 'change made during the outage', 20_000);
  t.same(await podsAnswering(NODE_IP, 30080), { pods: ['pod-a', 'pod-b'], failures: 0 }, 'both pods again');
  t.ok(agent.lines.some((l) => /cannot list\/watch from the API server/.test(l)), 'the outage was logged');
  t.ok(agent.lines.some((l) => /API server reachable again/.test(l)), 'and the recovery');
});

t.test('/healthz and /metrics from inside the node', async (t) => {
  const hz = await getInNode('http://127.0.0.1:10256/healthz');
  t.equal(hz.status, 200);
  t.match(JSON.parse(hz.body), { nodeEligible: true });
  const m = await getInNode('http://127.0.0.1:10249/metrics');
  t.equal(m.status, 200);
  const excerpt = m.body.split('\n').filter((l) => /^kubeproxy_(sync_proxy_rules_(duration_seconds_count|last_timestamp_seconds|service_changes_total|endpoint_changes_total|iptables_total|iptables_restore_failures_total)|sync_full_proxy_rules_duration_seconds_count|sync_partial_proxy_rules_duration_seconds_count|network_programming_duration_seconds_count)/.test(l));
  t.comment(`metrics excerpt after churn and an outage:\n${excerpt.join('\n')}`);
  t.match(m.body, /^kubeproxy_sync_proxy_rules_endpoint_changes_total [1-9]/m);
  t.match(m.body, /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="nat"\} [1-9]/m);
});

t.test('SIGTERM exits 0 and leaves the rules', async (t) => {
  t.equal(await agent.stop('SIGTERM'), 0);
  t.match(await save(), /demo\/web:http/);
});
