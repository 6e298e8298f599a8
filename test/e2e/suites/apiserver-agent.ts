/**
 * End to end, as root: the built agent runs in a node network namespace and
 * watches the fake API server (reached through a unix-socket bridge, so the
 * root namespace's network is never touched); real traffic keeps flowing
 * through service churn and an API server outage.
 *
 * Run per mode by apiserver-agent-iptables.test.ts / apiserver-agent-nftables.test.ts.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTopology, NODE_IP, nodeCmd } from '../../../scripts/netns/topology.js';
import type { Topology } from '../../../scripts/netns/topology.js';
import { repoRoot, startAgentInNode } from '../../../scripts/netns/agent.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { apiService, apiSlice, loadDirInto } from '../../helpers/api-objects.js';

import { dnatTargets, kernelState, mentions, modeArgs, needsRoot, nsPrefix, rulesText, svcPort, waitForRules as waitForModeRules } from './proxy-mode.js';
import type { ProxyMode } from './proxy-mode.js';

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const WEB = svcPort('demo/web:http');
const API = svcPort('demo/api:http');
const DNS = svcPort('demo/dns:dns/UDP');
/** The cluster's service range, as a ServiceCIDR object says (nftables mode drops traffic to its unallocated addresses). */
const SERVICE_CIDR = '10.96.0.0/16';
const UNALLOCATED_IP = '10.96.99.99';

export async function run(mode: ProxyMode): Promise<void> {
  if (!needsRoot(t, `create network namespaces and program ${mode}`)) return;
  const dir = await mkdtemp(join(tmpdir(), 'kpt-e2e-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'api.sock');
  const api = await FakeApiServer.start({ socketPath, bookmarkIntervalMs: 500 });
  t.teardown(() => api.close());
  loadDirInto(api, join(repoRoot(), 'examples'));
  api.apply('servicecidrs', { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'kubernetes' }, spec: { cidrs: [SERVICE_CIDR] } });

  const topo: Topology = await createTopology({
    prefix: nsPrefix('apiserver', mode),
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
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster: { server: "http://127.0.0.1:6443", insecure-skip-tls-verify: true }',
      'users:',
      '- name: kube-proxy',
      '  user: {}',
      'contexts:',
      '- name: default',
      '  context: { cluster: fake, user: kube-proxy }',
      'current-context: default',
      '',
    ].join('\n'),
  );

  const agent = startAgentInNode(topo, [
    ...modeArgs(mode),
    `--kubeconfig=${kubeconfig}`,
    '--hostname-override=node-1',
    '--cluster-cidr=10.244.0.0/16',
    '--iptables-min-sync-period=200ms',
    '--healthz-bind-address=127.0.0.1:10256',
    '--metrics-bind-address=127.0.0.1:10249',
  ]);
  t.teardown(() => agent.stop('SIGKILL'));
  await agent.waitForSyncs(1, 30_000);

  /** The mode's kernel state (both families, canonical), for before/after comparisons. */
  const save = (): Promise<string> => kernelState(topo, mode);
  const waitForRules = (pred: (rules: string) => boolean, what: string, ms = 10_000): Promise<void> =>
    waitForModeRules(topo, mode, pred, what, { timeoutMs: ms, log: () => agent.lines });
  async function podsAnswering(host: string, port: number, n = 12): Promise<{ pods: string[]; failures: number }> {
    const pods = new Set<string>();
    let failures = 0;
    for (let i = 0; i < n; i++) {
      const r = await topo.probe(topo.clientNs, { proto: 'tcp', host, port, timeoutMs: 4000 });
      if (r.ok) pods.add(r.pod);
      else failures++;
    }
    return { pods: [...pods].sort(), failures };
  }
  /** GET over HTTP from inside the node namespace. */
  async function getInNode(url: string): Promise<{ status: number; body: string }> {
    const script = `fetch(${JSON.stringify(url)}).then(async r => console.log(JSON.stringify({ status: r.status, body: await r.text() })))`;
    const r = await topo.exec(topo.nodeNs, nodeCmd('-e', script), { check: true });
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
    await waitForRules((s) => !dnatTargets(s, mode, WEB).includes(`${POD_B}:8080`), 'endpoint removed');
    t.same(await podsAnswering(NODE_IP, 30080), { pods: ['pod-a'], failures: 0 }, 'only the remaining endpoint answers');

    api.create('services', apiService('api', '10.96.0.11'));
    api.create('endpointslices', apiSlice('api', [POD_B]));
    // The Service and its EndpointSlice may arrive in different syncs: wait for the endpoint.
    await waitForRules((s) => dnatTargets(s, mode, API).includes(`${POD_B}:8080`), 'service added');
    const r = await topo.probe(topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.11', port: 80 });
    t.match(r, { ok: true, pod: 'pod-b' }, 'new service answers');

    api.delete('services', 'demo', 'dns');
    await waitForRules((s) => !mentions(s, mode, DNS), 'service deleted');
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
    await waitForRules((s) => dnatTargets(s, mode, WEB).includes(`${POD_B}:8080`), 'change made during the outage', 20_000);
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
    const excerpt = m.body.split('\n').filter((l) => /^kubeproxy_(sync_proxy_rules_(duration_seconds_count|last_timestamp_seconds|service_changes_total|endpoint_changes_total|iptables_total|iptables_restore_failures_total|nftables_sync_failures_total)|sync_full_proxy_rules_duration_seconds_count|sync_partial_proxy_rules_duration_seconds_count|network_programming_duration_seconds_count)/.test(l));
    t.comment(`metrics excerpt after churn and an outage:\n${excerpt.join('\n')}`);
    t.match(m.body, /^kubeproxy_sync_proxy_rules_endpoint_changes_total [1-9]/m);
    t.match(m.body, /^kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/m);
    // As upstream, the mode decides which metrics exist: iptables_* in iptables mode, nftables_* in nftables mode.
    if (mode === 'iptables') {
      t.match(m.body, /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="nat"\} [1-9]/m);
      t.notMatch(m.body, /^kubeproxy_sync_proxy_rules_nftables_/m);
    } else {
      t.match(m.body, /^kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 0$/m);
      t.notMatch(m.body, /^kubeproxy_sync_proxy_rules_iptables_/m);
    }
  });

  t.test('an unallocated address of a ServiceCIDR: dropped at the node in nftables mode only', async (t) => {
    const sport = 46099;
    const r = await topo.probe(topo.pod('pod-a').ns, { proto: 'udp', host: UNALLOCATED_IP, port: 53, sourcePort: sport, timeoutMs: 500 });
    t.match(r, { ok: false, error: 'timeout' }, `nobody answers: ${JSON.stringify(r)}`);
    const ct = await topo.exec(topo.nodeNs, ['conntrack', '-L', '-p', 'udp', '--orig-dst', UNALLOCATED_IP, '--orig-port-src', String(sport)]);
    if (mode === 'nftables') {
      // Upstream's nftables mode drops new connections to the ServiceCIDRs' unallocated addresses
      // (cluster-ips-check), before conntrack confirms them: no flow is recorded, nothing is forwarded.
      t.match(await rulesText(topo, mode), /ip daddr (\{ )?10\.96\.0\.0\/16( \})? drop/, 'the ServiceCIDR from the API server is in the rules');
      t.notMatch(ct.stdout, /dst=10\.96\.99\.99/, `dropped at the node (no conntrack entry): ${ct.stdout}`);
    } else {
      // Upstream's iptables mode does not know the ServiceCIDRs: the packet is routed on like any other
      // (here out to the client, which drops it), and conntrack records the flow.
      t.match(ct.stdout, /dst=10\.96\.99\.99/, `forwarded (a conntrack entry): ${ct.stdout}`);
    }
  });

  t.test('SIGTERM exits 0 and leaves the rules', async (t) => {
    t.equal(await agent.stop('SIGTERM'), 0);
    t.ok(mentions(await rulesText(topo, mode), mode, WEB), 'demo/web still proxied');
  });
}
