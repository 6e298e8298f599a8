/**
 * The agent driven through the fake API server by the unmodified
 * @kubernetes/client-node informers, with a recording iptables tool: what
 * reaches the backend after creates, updates, deletes, outages, 410s and
 * bursts; and what the health and metrics servers answer.
 */
import t from 'tap';
import type { Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent, StartupError } from '../../src/agent/agent.js';
import type { RunningAgent } from '../../src/agent/agent.js';
import { memoryLogger } from '../../src/agent/log.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import { tracePacket } from '../../src/trace/iptables/trace.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { apiNode, apiService, apiSlice } from '../helpers/api-objects.js';
import { fakeIptables } from '../helpers/fake-iptables.js';
import type { FakeIptables } from '../helpers/fake-iptables.js';
import { until } from '../helpers/until.js';


function options(api: FakeApiServer, over: Partial<AgentOptions> = {}): AgentOptions {
  return {
    proxyMode: 'iptables',
    master: api.url,
    hostnameOverride: 'node-1',
    clusterCIDR: '10.244.0.0/16',
    masqueradeAll: false,
    masqueradeBit: 14,
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 100,
    nodePortAddresses: [],
    localhostNodePorts: true,
    healthzBindAddress: '127.0.0.1:0',
    metricsBindAddress: '127.0.0.1:0',
    once: false,
    dryRun: false,
    cleanup: false,
    verbosity: 2,
    ...over,
  };
}

/** Endpoints a pod reaches for dst:port in the last applied rules (the tracer is the oracle). */
function endpointsFor(input: string | undefined, dst: string, port = 80): string[] {
  if (!input) return [];
  const r = tracePacket(parseIptablesRules(input), { origin: 'forward', src: '10.244.9.9', dst, proto: 'tcp', dport: port }, { localAddresses: ['203.0.113.1'] });
  return r.endpoints.map((e) => `${e.address}:${e.port}`).sort();
}

async function setup(t: Test, over: Partial<AgentOptions> = {}): Promise<{ api: FakeApiServer; tool: FakeIptables; agent: RunningAgent; log: ReturnType<typeof memoryLogger> }> {
  const api = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => api.close());
  api.create('nodes', apiNode('node-1'));
  api.create('services', apiService('web', '10.96.0.10'));
  api.create('endpointslices', apiSlice('web', ['10.244.1.2', '10.244.1.3']));
  const tool = fakeIptables();
  const log = memoryLogger(2);
  const agent = await startAgent(options(api, over), { log, out: () => undefined, iptables: tool });
  t.teardown(() => agent.stop());
  await agent.ready;
  return { api, tool, agent, log };
}

t.test('creates, updates and deletes reach the rules; headless and other proxies\' services are filtered on the watch', async (t) => {
  const { api, tool } = await setup(t);
  const last = (): string => tool.current();
  t.same(endpointsFor(last(), '10.96.0.10'), ['10.244.1.2:8080', '10.244.1.3:8080']);
  t.ok(api.labelSelectorsUsed('services', 'list').includes('!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless'), 'services listed with upstream\'s selector');
  t.ok(api.labelSelectorsUsed('endpointslices', 'watch').includes('!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless'), 'slices watched with it too');
  t.ok(api.fieldSelectorsUsed('nodes', 'list').includes('metadata.name=node-1'), 'only its own Node');

  api.update('endpointslices', apiSlice('web', ['10.244.1.3']));
  await until(t, () => endpointsFor(last(), '10.96.0.10').join() === '10.244.1.3:8080', 'endpoint removal');
  api.create('services', apiService('api', '10.96.0.11'));
  api.create('endpointslices', apiSlice('api', ['10.244.1.7']));
  await until(t, () => endpointsFor(last(), '10.96.0.11').join() === '10.244.1.7:8080', 'new service');
  api.create('services', apiService('other', '10.96.0.12', { labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } }));
  api.create('endpointslices', apiSlice('other', ['10.244.1.8'], { labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } }));
  api.create('services', apiService('hl', '10.96.0.13', { labels: { 'service.kubernetes.io/headless': '' } }));
  api.delete('services', 'demo', 'web');
  await until(t, () => !(last() ?? '').includes('demo/web:http'), 'service deletion');
  t.notMatch(last(), /10\.96\.0\.12|10\.96\.0\.13/, 'filtered services never reach the rules');
  t.same(endpointsFor(last(), '10.96.0.11'), ['10.244.1.7:8080'], 'the rest is unaffected');
});

t.test('an invalid object is rejected with a warning and counted; the rest keeps working', async (t) => {
  const { api, tool, log, agent } = await setup(t);
  api.create('services', { ...apiService('bad', '10.96.0.99'), spec: { clusterIP: '10.96.0.999', ports: [{ name: 'http', port: 80 }] } });
  api.create('services', apiService('good', '10.96.0.20'));
  api.create('endpointslices', apiSlice('good', ['10.244.1.9']));
  await until(t, () => endpointsFor(tool.current(), '10.96.0.20').length === 1, 'good service');
  t.ok(log.lines.some((l) => /W "rejecting invalid object.*object="?Service demo\/bad.*spec\.clusterIP/.test(l)), 'one warning naming the object and reason');
  const metrics = await (await fetch(`http://127.0.0.1:${agent.metricsServer.port}/metrics`)).text();
  t.match(metrics, /kubeproxy_ts_invalid_objects_total\{kind="Service",source="apiserver"\} 1/);
});

t.test('an API outage keeps the rules; changes made meanwhile arrive after it; a 410 re-list loses nothing', async (t) => {
  const { api, tool, log } = await setup(t);
  const syncsBefore = tool.inputs.length;
  await api.setDown(true);
  await sleep(1500);
  t.ok(log.lines.some((l) => /W "cannot list\/watch from the API server; keeping the current rules/.test(l)), 'the outage is logged');
  const warnings = log.lines.filter((l) => / W .*cannot list\/watch/.test(l)).length;
  t.ok(warnings <= 4, `no flood of warnings (${warnings}: at most one per resource)`);
  t.equal(tool.inputs.length, syncsBefore, 'no sync during the outage, so the rules stay');
  // Changes made while the agent cannot see them.
  api.update('endpointslices', apiSlice('web', ['10.244.1.4']));
  await api.setDown(false);
  await until(t, () => endpointsFor(tool.current(), '10.96.0.10').join() === '10.244.1.4:8080', 'change made during the outage', 15_000);
  t.ok(log.lines.some((l) => /API server reachable again/.test(l)), 'recovery logged');

  // 410: history compacted while a change happens, watches broken: the informer re-lists.
  api.compact();
  api.update('endpointslices', apiSlice('web', ['10.244.1.5', '10.244.1.6']));
  api.create('services', apiService('late', '10.96.0.30'));
  api.create('endpointslices', apiSlice('late', ['10.244.1.30']));
  api.closeWatches();
  await until(t, () => endpointsFor(tool.current(), '10.96.0.10').join() === '10.244.1.5:8080,10.244.1.6:8080', 'change across the 410');
  await until(t, () => endpointsFor(tool.current(), '10.96.0.30').length === 1, 'service created across the 410');
});

t.test('5xx answers are retried with backoff', async (t) => {
  const { api, tool } = await setup(t);
  api.failAll(503);
  api.closeWatches();
  await sleep(300);
  api.update('endpointslices', apiSlice('web', ['10.244.1.2']));
  api.failAll(null);
  await until(t, () => endpointsFor(tool.current(), '10.96.0.10').join() === '10.244.1.2:8080', 'change after 503s', 15_000);
});

t.test('a burst of 500 changes inside minSyncPeriod produces one sync', async (t) => {
  const { api, tool } = await setup(t, { minSyncPeriodMs: 2000 });
  await sleep(2100); // let the first sync's min period pass
  const before = tool.inputs.length;
  for (let i = 0; i < 250; i++) {
    api.create('services', apiService(`burst-${i}`, `10.97.${Math.floor(i / 250)}.${(i % 250) + 1}`));
    api.create('endpointslices', apiSlice(`burst-${i}`, [`10.244.2.${(i % 250) + 1}`]));
  }
  await until(t, () => tool.inputs.length > before, 'the burst sync');
  await sleep(2500);
  t.equal(tool.inputs.length - before, 1, '500 changes, one sync');
  t.equal((tool.current()!.match(/^-A KUBE-SERVICES .*cluster IP" -m tcp -p tcp -d 10\.97\./gm) ?? []).length, 250, 'with every change in it');
});

t.test('started while the API server is down, it retries and syncs once it is up', async (t) => {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  api.create('nodes', apiNode('node-1'));
  api.create('services', apiService('web', '10.96.0.10'));
  api.create('endpointslices', apiSlice('web', ['10.244.1.2']));
  await api.setDown(true);
  const tool = fakeIptables();
  const log = memoryLogger(2);
  const starting = startAgent(options(api), { log, out: () => undefined, iptables: tool });
  await sleep(1500);
  t.equal(tool.inputs.length, 0, 'nothing synced before the first complete list');
  await api.setDown(false);
  const agent = await starting;
  t.teardown(() => agent.stop());
  await agent.ready;
  t.same(endpointsFor(tool.current(), '10.96.0.10'), ['10.244.1.2:8080']);
});

t.test('a clusterCIDR overlapping a ServiceCIDR is refused at start-up', async (t) => {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  api.create('servicecidrs', { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
  await t.rejects(startAgent(options(api, { clusterCIDR: '10.96.0.0/16' }), { log: memoryLogger(), out: () => undefined, iptables: fakeIptables() }), StartupError);
  await t.rejects(
    startAgent(options(api, { clusterCIDR: '10.0.0.0/8' }), { log: memoryLogger(), out: () => undefined, iptables: fakeIptables() }),
    { message: /clusterCIDR 10\.0\.0\.0\/8 overlaps the service range 10\.96\.0\.0\/12 \(ServiceCIDR kubernetes\)/ },
  );
});

t.test('healthz, livez and metrics answer with upstream\'s codes, bodies and names', async (t) => {
  const { api, agent } = await setup(t);
  const hz = await fetch(`http://127.0.0.1:${agent.healthz.port}/healthz`);
  t.equal(hz.status, 200);
  t.match(hz.headers.get('content-type'), /application\/json/);
  const body = (await hz.json()) as Record<string, unknown>;
  t.match(body, { lastUpdated: String, currentTime: String, nodeEligible: true });
  t.equal((await fetch(`http://127.0.0.1:${agent.healthz.port}/livez`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${agent.healthz.port}/nope`)).status, 404);

  // The node being deleted: /healthz says 503, /livez stays 200.
  api.update('nodes', apiNode('node-1', { spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] } }));
  let status = 0;
  for (let i = 0; i < 100 && status !== 503; i++) {
    status = (await fetch(`http://127.0.0.1:${agent.healthz.port}/healthz`)).status;
    await sleep(30);
  }
  t.equal(status, 503, 'node being deleted');
  t.equal((await fetch(`http://127.0.0.1:${agent.healthz.port}/livez`)).status, 200);

  const m = await fetch(`http://127.0.0.1:${agent.metricsServer.port}/metrics`);
  t.equal(m.status, 200);
  const text = await m.text();
  for (const name of [
    'kubeproxy_sync_proxy_rules_duration_seconds',
    'kubeproxy_sync_full_proxy_rules_duration_seconds',
    'kubeproxy_sync_partial_proxy_rules_duration_seconds',
    'kubeproxy_network_programming_duration_seconds',
    'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
    'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
    'kubeproxy_sync_proxy_rules_service_changes_total',
    'kubeproxy_sync_proxy_rules_endpoint_changes_total',
    'kubeproxy_sync_proxy_rules_iptables_total',
    'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
    'kubeproxy_ts_invalid_objects_total',
    'process_cpu_seconds_total',
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  // Series that must have values after the first full sync.
  t.match(text, /^kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/m);
  t.match(text, /^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} 1\d{9}/m);
  t.match(text, /^kubeproxy_sync_proxy_rules_service_changes_total [1-9]/m);
  t.match(text, /^kubeproxy_sync_proxy_rules_endpoint_changes_total [1-9]/m);
  t.match(text, /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="nat"\} [1-9]/m, 'nat rule count recorded');
});

t.test('network programming latency is observed from the slice trigger time', async (t) => {
  const { api, agent, tool } = await setup(t);
  const before = tool.inputs.length;
  api.update('endpointslices', apiSlice('web', ['10.244.1.2'], { triggerTime: new Date(Date.now() - 2000).toISOString() }));
  await until(t, () => tool.inputs.length > before, 'sync');
  const text = await (await fetch(`http://127.0.0.1:${agent.metricsServer.port}/metrics`)).text();
  const count = /^kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} (\d+)/m.exec(text);
  t.equal(count?.[1], '1', 'one observation');
  const under1 = /^kubeproxy_network_programming_duration_seconds_bucket\{le="1",ip_family="IPv4"\} (\d+)/m.exec(text);
  t.equal(under1?.[1], '0', 'about 2 s, not under 1 s');
});
