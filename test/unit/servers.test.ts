import t from 'tap';
import { request } from 'node:http';
import { ProxyHealth } from '../../src/agent/server/health.js';
import { HealthzServer } from '../../src/agent/server/healthz-server.js';
import { BindAddressError, DEFAULT_HEALTHZ_BIND_ADDRESS, DEFAULT_METRICS_BIND_ADDRESS, parseBindAddress } from '../../src/agent/server/listen.js';
import { NETWORK_PROGRAMMING_BUCKETS, ProxyMetrics, SYNC_DURATION_BUCKETS } from '../../src/agent/server/metrics.js';
import { MetricsServer } from '../../src/agent/server/metrics-server.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample line, e.g. `name{a="b"}`. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const UPSTREAM_NAMES = [
  'kubeproxy_sync_proxy_rules_duration_seconds',
  'kubeproxy_sync_full_proxy_rules_duration_seconds',
  'kubeproxy_sync_partial_proxy_rules_duration_seconds',
  'kubeproxy_network_programming_duration_seconds',
  'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
  'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
  'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
  'kubeproxy_sync_proxy_rules_endpoint_changes_total',
  'kubeproxy_sync_proxy_rules_service_changes_pending',
  'kubeproxy_sync_proxy_rules_service_changes_total',
  'kubeproxy_sync_proxy_rules_iptables_total',
  'kubeproxy_sync_proxy_rules_iptables_last',
  'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
  'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
  'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
  'kubeproxy_proxy_healthz_total',
  'kubeproxy_proxy_livez_total',
];

t.test('bind address parsing, as upstream\'s flag', async (t) => {
  const opts = { defaultPort: 10256 };
  const flag = '--healthz-bind-address';
  t.equal(DEFAULT_HEALTHZ_BIND_ADDRESS, '0.0.0.0:10256');
  t.equal(DEFAULT_METRICS_BIND_ADDRESS, '127.0.0.1:10249');
  t.same(parseBindAddress(flag, '0.0.0.0:10256', opts), { host: '0.0.0.0', port: 10256, family: 'IPv4' });
  t.same(parseBindAddress(flag, '[::]:10256', opts), { host: '::', port: 10256, family: 'IPv6' });
  t.same(parseBindAddress(flag, '[::1]:8080', opts), { host: '::1', port: 8080, family: 'IPv6' });
  t.same(parseBindAddress(flag, '::', opts), { host: '::', port: 10256, family: 'IPv6' }, 'a bare IP gets the default port');
  t.same(parseBindAddress(flag, '127.0.0.1', opts), { host: '127.0.0.1', port: 10256, family: 'IPv4' });
  t.equal(parseBindAddress(flag, '', opts), undefined, 'empty disables');
  t.equal(parseBindAddress(flag, '  ', opts), undefined);
  t.throws(() => parseBindAddress(flag, '127.0.0.1:0', opts), /must be a valid port \(1-65535\)/, 'upstream validation refuses port 0');
  t.same(parseBindAddress(flag, '127.0.0.1:0', { ...opts, allowPortZero: true }), { host: '127.0.0.1', port: 0, family: 'IPv4' });
  for (const bad of ['localhost:10256', '::1:10256', '127.0.0.1:65536', '127.0.0.1:', '127.0.0.1:http', '[::1]10256', '[::1', '10.0.0.256:80', 'nonsense']) {
    let err: unknown;
    try {
      parseBindAddress(flag, bad, opts);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof BindAddressError && err.message.startsWith('--healthz-bind-address: '), `refuses ${JSON.stringify(bad)}: ${String(err)}`);
  }
});

t.test('healthz server: /healthz and /livez, headers, bodies, node eligibility, 404', async (t) => {
  let now = Date.UTC(2024, 0, 2, 3, 4, 5);
  const health = new ProxyHealth({ healthTimeoutMs: 10_000, now: () => now });
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const server = new HealthzServer({ health, metrics });
  await server.start('127.0.0.1:0');
  t.teardown(() => server.close());
  t.equal(server.listening, true);
  const port = server.port!;
  t.ok(port > 0, 'the actual port is exposed');
  t.equal(server.address, `127.0.0.1:${port}`);

  health.updated('IPv4');
  let r = await get(port, '/healthz');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/json');
  t.equal(r.headers['x-content-type-options'], 'nosniff');
  let body = JSON.parse(r.body) as Record<string, unknown>;
  t.same(Object.keys(body), ['lastUpdated', 'currentTime', 'nodeEligible', 'healthy', 'status'], 'upstream field order');
  t.match(body, { lastUpdated: '2024-01-02T03:04:05Z', currentTime: '2024-01-02T03:04:05Z', nodeEligible: true, healthy: true, status: { IPv4: { healthy: true } } });

  r = await get(port, '/livez');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/json');
  t.equal(r.headers['x-content-type-options'], 'nosniff');
  t.notOk('nodeEligible' in (JSON.parse(r.body) as object), '/livez has no nodeEligible');

  r = await get(port, '/healthz?foo=bar', 'HEAD');
  t.equal(r.status, 200, 'any method, query ignored');

  // The node is being deleted: /healthz fails so load balancers drain it; /livez still passes.
  health.syncNode({ deletionTimestamp: '2024-01-02T03:00:00Z' });
  r = await get(port, '/healthz');
  t.equal(r.status, 503);
  body = JSON.parse(r.body) as Record<string, unknown>;
  t.equal(body.nodeEligible, false);
  t.equal(body.healthy, true);
  t.equal((await get(port, '/livez')).status, 200);
  health.syncNode({ taints: [] });

  // A queued change left unsynced past the timeout: both fail.
  health.queuedUpdate('IPv4');
  now += 10_000;
  r = await get(port, '/healthz');
  t.equal(r.status, 503);
  t.match(JSON.parse(r.body), { healthy: false, nodeEligible: true, lastUpdated: '2024-01-02T03:04:05Z', currentTime: '2024-01-02T03:04:15Z' });
  t.equal((await get(port, '/livez')).status, 503);
  health.updated('IPv4');
  t.equal((await get(port, '/healthz')).status, 200);

  for (const path of ['/', '/healthz/', '/metrics', '/livez/x']) {
    r = await get(port, path);
    t.equal(r.status, 404, `${path} is 404`);
    t.equal(r.body, '404 page not found\n');
    t.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  }

  const text = await metrics.metrics();
  t.equal(sample(text, 'kubeproxy_proxy_healthz_total{code="200"}'), 3);
  t.equal(sample(text, 'kubeproxy_proxy_healthz_total{code="503"}'), 2);
  t.equal(sample(text, 'kubeproxy_proxy_livez_total{code="200"}'), 2);
  t.equal(sample(text, 'kubeproxy_proxy_livez_total{code="503"}'), 1);

  await server.close();
  t.equal(server.listening, false);
  t.equal(server.port, undefined);
  await t.rejects(get(port, '/healthz'), { code: 'ECONNREFUSED' }, 'closed');
  await server.close();
});

t.test('metrics server: /metrics after a sync, names, buckets, values; /healthz; /proxyMode; 404', async (t) => {
  const metrics = new ProxyMetrics({ mode: 'iptables' });
  const server = new MetricsServer({ metrics, proxyMode: 'iptables' });
  await server.start('127.0.0.1:0');
  t.teardown(() => server.close());
  const port = server.port!;

  const at = Date.UTC(2024, 0, 2, 3, 4, 5, 500);
  metrics.recordQueuedSync(at - 1_000);
  metrics.recordServiceChanges(3);
  metrics.recordEndpointChanges();
  metrics.recordEndpointChanges(2);
  metrics.setPendingChanges({ services: 1, endpoints: 4 });
  metrics.recordSync({ full: true, seconds: 0.003, at });
  metrics.recordSync({ full: false, seconds: 0.0005, at: at + 1 });
  metrics.recordSync({ full: false, seconds: 20, ok: false, at: at + 2 });
  metrics.setIptablesRules('nat', { total: 120, lastSync: 7 });
  metrics.setIptablesRules('filter', { total: 9, lastSync: 2 });
  metrics.recordRestoreFailure({ partial: true });
  metrics.recordRestoreFailure({ partial: false });
  metrics.setNoLocalEndpoints('internal', 1);
  metrics.setNoLocalEndpoints('external', 2);
  metrics.recordNetworkProgramming(at - 1_600, at);
  metrics.recordNetworkProgramming(new Date(at - 400), at);
  metrics.recordHealthzResponse(200);
  metrics.recordLivezResponse(503);
  metrics.recordInvalidObject('Service', 'manifests');
  metrics.recordInvalidObject('Service', 'manifests', 2);

  const r = await get(port, '/metrics');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], metrics.contentType);
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = r.body;

  for (const name of UPSTREAM_NAMES) t.match(text, new RegExp(`^# HELP ${name} \\[ALPHA\\] `, 'm'), `${name} present with upstream's alpha help`);
  t.match(text, /^# HELP kubeproxy_sync_proxy_rules_duration_seconds \[ALPHA\] SyncProxyRules latency in seconds$/m);
  t.match(text, /^# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram$/m);
  t.match(text, /^# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge$/m);
  t.match(text, /^# TYPE kubeproxy_sync_proxy_rules_service_changes_total counter$/m);
  t.match(text, /^# TYPE kubeproxy_ts_invalid_objects_total counter$/m);
  t.match(text, /^process_cpu_seconds_total /m, 'default process metrics');
  t.match(text, /^process_resident_memory_bytes /m);
  t.notMatch(text, /nftables/, 'no nftables metrics in iptables mode');

  // Sync duration buckets: ExponentialBuckets(0.001, 2, 15) and +Inf.
  const les = [...text.matchAll(/^kubeproxy_sync_proxy_rules_duration_seconds_bucket\{le="([^"]+)",ip_family="IPv4"\}/gm)].map((m) => m[1]);
  t.same(les, ['0.001', '0.002', '0.004', '0.008', '0.016', '0.032', '0.064', '0.128', '0.256', '0.512', '1.024', '2.048', '4.096', '8.192', '16.384', '+Inf']);
  t.same(SYNC_DURATION_BUCKETS.length, 15);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001",ip_family="IPv4"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004",ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="16.384",ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf",ip_family="IPv4"}'), 3, 'failed syncs are timed too');
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}'), 3);
  t.equal(sample(text, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}'), (at + 1) / 1000, 'only successful syncs set the timestamp');
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}'), (at - 1_000) / 1000);

  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_total'), 3);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 3);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 4);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{ip_family="IPv4",table="nat"}'), 120);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_iptables_last{ip_family="IPv4",table="filter"}'), 2);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total{ip_family="IPv4"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="external"}'), 2);
  t.equal(sample(text, 'kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_network_programming_duration_seconds_bucket{le="0.5",ip_family="IPv4"}'), 1);
  t.equal(sample(text, 'kubeproxy_network_programming_duration_seconds_bucket{le="2",ip_family="IPv4"}'), 2);
  t.equal(sample(text, 'kubeproxy_network_programming_duration_seconds_bucket{le="0",ip_family="IPv4"}'), 0, 'MergeBuckets\' leading 0 bucket');
  t.equal(sample(text, 'kubeproxy_proxy_healthz_total{code="200"}'), 1);
  t.equal(sample(text, 'kubeproxy_proxy_livez_total{code="503"}'), 1);
  t.equal(sample(text, 'kubeproxy_ts_invalid_objects_total{kind="Service",source="manifests"}'), 3);

  let h = await get(port, '/healthz');
  t.equal(h.status, 200);
  t.equal(h.body, 'ok');
  t.equal(h.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(h.headers['x-content-type-options'], 'nosniff');
  h = await get(port, '/healthz?verbose');
  t.equal(h.body, '[+]ping ok\nhealthz check passed\n');
  t.equal((await get(port, '/healthz/ping')).body, 'ok');
  h = await get(port, '/proxyMode');
  t.equal(h.status, 200);
  t.equal(h.body, 'iptables');
  for (const path of ['/', '/livez', '/metricsx', '/metrics/']) {
    h = await get(port, path);
    t.equal(h.status, 404, `${path} is 404`);
    t.equal(h.body, '404 page not found\n');
  }
});

t.test('network programming buckets are upstream\'s', async (t) => {
  t.equal(NETWORK_PROGRAMMING_BUCKETS.length, 81);
  t.same(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5), [0, 0.25, 0.5, 1, 2]);
  t.same(NETWORK_PROGRAMMING_BUCKETS.slice(61, 64), [59, 60, 65]);
  t.same(NETWORK_PROGRAMMING_BUCKETS.slice(-7), [120, 150, 180, 210, 240, 270, 300]);
});

t.test('nftables mode registers the nftables failure counters instead of the iptables metrics', async (t) => {
  const metrics = new ProxyMetrics({ mode: 'nftables', family: 'IPv6', defaultMetrics: false });
  metrics.recordSync({ full: false, seconds: 0.01 });
  metrics.recordRestoreFailure({ partial: true });
  metrics.recordNftablesCleanupFailure();
  metrics.setIptablesRules('nat', { total: 5 });
  const text = await metrics.metrics();
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total{ip_family="IPv6"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total{ip_family="IPv6"}'), 1);
  t.equal(sample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv6"}'), 1);
  t.notMatch(text, /iptables|sync_full_proxy|sync_partial_proxy/);
  t.notMatch(text, /^process_/m, 'default metrics can be turned off');
});

t.test('errors: address in use, malformed address; empty disables', async (t) => {
  const health = new ProxyHealth({ healthTimeoutMs: 1_000 });
  const first = new HealthzServer({ health });
  await first.start('127.0.0.1:0');
  t.teardown(() => first.close());
  const addr = `127.0.0.1:${first.port}`;

  const second = new HealthzServer({ health });
  const err = await second.start(addr).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof BindAddressError, 'a BindAddressError');
  t.equal((err as BindAddressError).code, 'EADDRINUSE');
  t.equal((err as BindAddressError).message, `--healthz-bind-address: cannot listen on ${addr}: address already in use`);
  t.equal(second.listening, false);

  const metricsServer = new MetricsServer({ metrics: new ProxyMetrics({ defaultMetrics: false }) });
  await t.rejects(metricsServer.start(addr), { name: 'BindAddressError', message: /^--metrics-bind-address: cannot listen on .*address already in use$/ });
  await t.rejects(metricsServer.start('localhost:10249'), { message: /^--metrics-bind-address: "localhost" in "localhost:10249" must be a valid IP address$/ });
  await t.rejects(second.start('127.0.0.1:99999'), { message: /^--healthz-bind-address: .*must be a valid port/ });

  const disabled = new HealthzServer({ health });
  await disabled.start('');
  t.equal(disabled.listening, false);
  t.equal(disabled.port, undefined);
  t.equal(disabled.address, undefined);
  await disabled.close();

  await t.rejects(first.start('127.0.0.1:0'), { message: /^--healthz-bind-address: already listening on 127\.0\.0\.1:\d+$/ });
});
