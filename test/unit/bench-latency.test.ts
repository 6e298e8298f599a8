/**
 * `kube-proxy-ts bench --latency`, the parts that need no root: reading the
 * agent's log lines (as its own logger writes them), its /metrics text and
 * /proc status, the percentiles, the synthetic cluster as API objects (the
 * agent's validation turns them back into the same model), the arguments,
 * and the table.
 */
import t from 'tap';
import { createLogger } from '../../src/agent/log.js';
import { ProxyMetrics } from '../../src/agent/server/metrics.js';
import { validateEndpointSlice, validateNode, validateService } from '../../src/agent/sources/validate.js';
import { runBenchCommand } from '../../src/bench/bench-command.js';
import type { BenchCommandIO } from '../../src/bench/bench-command.js';
import { formatLatencyTable, parseLatencyArgs } from '../../src/bench/latency-command.js';
import { apiNodeOf, apiServiceOf, apiSliceOf } from '../../src/bench/latency-objects.js';
import { latencySummary, logFields, metricSample, parseFamiliesLine, parseLatencyLine, parseSyncLine, procStatusKiB } from '../../src/bench/latency-stats.js';
import type { LatencyResult } from '../../src/bench/latency.js';
import { summary } from '../../src/bench/stats.js';
import { SyntheticCluster } from '../../src/bench/synthetic-cluster.js';

/** Lines exactly as the agent's logger writes them. */
function logged(fn: (log: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  fn(createLogger(4, (s) => lines.push(s)));
  return lines;
}

t.test('the agent\'s log lines', async (t) => {
  const [lat4, lat6, sync, fams, other, quoted] = logged((log) => {
    // As src/agent/agent.ts logs them.
    log.info(4, 'network programming latency', { family: 'IPv4', ms: 812 });
    log.info(4, 'network programming latency', { family: 'IPv6', ms: 0 });
    log.info(2, 'synced rules', { family: 'IPv4', full: false, servicePorts: 1320, changed: 3, rules: 57, bytes: 4711, ms: 80, toolMs: 61 });
    log.info(0, 'initial state loaded; syncing', { services: 1000, families: 'IPv4,IPv6' });
    log.info(0, 'kube-proxy-ts starting', { mode: 'iptables', node: 'node-0000' });
    log.warn('something "odd"', { err: 'a b=c "d"', ms: 5 });
  });
  t.same(parseLatencyLine(lat4!), { family: 'IPv4', ms: 812 });
  t.same(parseLatencyLine(lat6!), { family: 'IPv6', ms: 0 });
  t.equal(parseLatencyLine(sync!), undefined, 'a sync line is no latency');
  t.equal(parseLatencyLine(other!), undefined);
  t.equal(parseLatencyLine('2025-01-01T00:00:00.000Z I "network programming latency" family=IPv4'), undefined, 'no ms');
  t.equal(parseLatencyLine('2025-01-01T00:00:00.000Z I "network programming latency" family=IPv5 ms=3'), undefined, 'unknown family');
  t.same(parseSyncLine(sync!), { family: 'IPv4', full: false, ms: 80, toolMs: 61, changed: 3 });
  t.equal(parseSyncLine(lat4!), undefined);
  t.same(parseFamiliesLine(fams!), ['IPv4', 'IPv6']);
  t.equal(parseFamiliesLine(other!), undefined);
  t.same(logFields(quoted!), { err: 'a b=c "d"', ms: '5' }, 'quoted values are unquoted, an = inside one is no field');
});

t.test('percentiles: nearest rank', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted input
  t.same(latencySummary(xs), { count: 100, p50: 50, p90: 90, p99: 99, max: 100, min: 1, mean: 50.5 });
  const two = latencySummary([10, 1000]);
  t.same([two.p50, two.p90, two.p99, two.max], [10, 1000, 1000, 1000]);
  const one = latencySummary([7]);
  t.same([one.p50, one.p90, one.p99, one.max, one.min], [7, 7, 7, 7, 7]);
  const none = latencySummary([]);
  t.equal(none.count, 0);
  t.ok(Number.isNaN(none.p50) && Number.isNaN(none.p99) && Number.isNaN(none.max));
  const big = latencySummary(Array.from({ length: 400 }, (_, i) => i + 1));
  t.same([big.p50, big.p90, big.p99], [200, 360, 396], 'p99 of 400 samples is the 396th');
});

t.test('the agent\'s /metrics text and /proc status', async (t) => {
  const m = new ProxyMetrics({ mode: 'iptables', defaultMetrics: false });
  const now = Date.now();
  for (const ms of [100, 200, 300]) m.recordNetworkProgramming(now - ms, now, 'IPv4');
  m.recordNetworkProgramming(now - 5, now, 'IPv6');
  const text = await m.metrics();
  t.equal(metricSample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }), 3);
  t.equal(metricSample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv6' }), 1);
  t.ok(Math.abs(metricSample(text, 'kubeproxy_network_programming_duration_seconds_sum', { ip_family: 'IPv4' })! - 0.6) < 1e-9, 'the sum');
  t.equal(metricSample(text, 'kubeproxy_network_programming_duration_seconds_count'), undefined, 'labels must match exactly');
  t.equal(metricSample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4', x: 'y' }), undefined);
  t.equal(metricSample('a{b="1",c="x,y"} 4\nb 5 1700000000\n', 'a', { c: 'x,y', b: '1' }), 4, 'label order and commas inside values');
  t.equal(metricSample('a{b="1",c="x,y"} 4\nb 5 1700000000\n', 'b'), 5, 'a timestamp after the value');
  t.equal(metricSample('# HELP a x\na{le="+Inf"} +Inf\n', 'a', { le: '+Inf' }), Infinity);

  const status = 'Name:\tnode\nVmPeak:\t 1100000 kB\nVmHWM:\t  212992 kB\nVmRSS:\t  200000 kB\n';
  t.equal(procStatusKiB(status, 'VmHWM'), 212992);
  t.equal(procStatusKiB(status, 'VmRSS'), 200000);
  t.equal(procStatusKiB(status, 'VmSwap'), undefined);
});

t.test('the synthetic cluster as API objects reads back as the same model', async (t) => {
  const c = new SyntheticCluster({ services: 300, endpointsPerService: 3, seed: 7 });
  const generated = c.initial();
  const types = new Set(generated.map((g) => g.service.type));
  t.ok(types.has('ClusterIP') && types.has('NodePort') && types.has('LoadBalancer'), 'every type is covered');
  for (const g of generated) {
    const s = validateService(apiServiceOf(g.service));
    if (!s.ok) {
      t.fail(`${g.service.name}: ${s.reason}`);
      continue;
    }
    t.same(s.value, g.service, `service ${g.service.name}`);
    for (const sl of g.slices) {
      const v = validateEndpointSlice(apiSliceOf(sl));
      t.same(v.ok ? v.value : v.reason, sl, `slice ${sl.name}`);
    }
  }
  const node = validateNode(apiNodeOf(c.node));
  t.same(node.ok ? node.value : node.reason, c.node, 'the node');
  const at = new Date('2025-03-04T05:06:07.089Z');
  const slice = c.replaceEndpoint(generated[0]!.slices[0]!);
  const annotated = apiSliceOf(slice, at);
  t.same((annotated.metadata.annotations as Record<string, string>)['endpoints.kubernetes.io/last-change-trigger-time'], '2025-03-04T05:06:07.089Z');
  const v = validateEndpointSlice(annotated);
  t.equal(v.ok && v.value.triggerTime, at.getTime(), 'the agent reads the trigger time to the millisecond');
});

t.test('arguments', async (t) => {
  const d = parseLatencyArgs([]);
  t.equal(d.kind, 'options');
  if (d.kind === 'options') {
    t.same(d.options, { services: 1000, endpointsPerService: 10, rate: 20, durationSeconds: 20, seed: 1, minSyncPeriod: '1s', maxSeconds: 300 }, 'defaults: the issue\'s 1,000 × 10 at 20/s for 20 s, upstream\'s 1s');
    t.equal(d.json, false);
  }
  const o = parseLatencyArgs(['--services', '20', '--endpoints-per-service', '3', '--rate', '2.5', '--duration', '3', '--iptables', 'legacy', '--iptables-min-sync-period', '250ms', '--namespace', 'x-1', '--agent-log', '/tmp/a.log', '--json']);
  t.equal(o.kind, 'options');
  if (o.kind === 'options') {
    t.same(o.options, { services: 20, endpointsPerService: 3, rate: 2.5, durationSeconds: 3, seed: 1, minSyncPeriod: '250ms', maxSeconds: 300, iptables: 'legacy', namespace: 'x-1', agentLog: '/tmp/a.log' });
    t.equal(o.json, true);
  }
  for (const bad of [['--rate', '0'], ['--rate', 'fast'], ['--duration', '-1'], ['--services', '0'], ['--iptables-min-sync-period', '1 second'], ['--namespace', '../x'], ['--iptables', 'ebpf'], ['--bogus']]) {
    const r = parseLatencyArgs(bad);
    t.match(r, { kind: 'exit', code: 2 }, bad.join(' '));
  }
  const help = parseLatencyArgs(['--help']);
  t.match(help, { kind: 'exit', code: 0, output: /--rate <r>/ });
});

function io(): BenchCommandIO & { out: string; err: string } {
  const o = { out: '', err: '', stderrIsTTY: false, stdout: (s: string) => void (o.out += s), stderr: (s: string) => void (o.err += s) };
  return o;
}

t.test('bench --latency dispatches to the latency bench', async (t) => {
  const h = io();
  t.equal(await runBenchCommand(['--latency', '--help'], h), 0);
  t.match(h.out, /Network programming latency of the whole agent/);
  const bad = io();
  t.equal(await runBenchCommand(['--latency', '--rate', 'x'], bad), 2);
  t.match(bad.err, /--rate: "x" must be a number/);
  const plain = io();
  t.equal(await runBenchCommand(['--help'], plain), 0);
  t.match(plain.out, /--latency/, 'the plain bench\'s help names the mode');
});

t.test('the table', async (t) => {
  const r: LatencyResult = {
    bench: 'kube-proxy-ts',
    schema: 1,
    kind: 'latency',
    params: { services: 1000, endpointsPerService: 10, rate: 20, durationSeconds: 20, seed: 1, minSyncPeriod: '1s', maxSeconds: 300 },
    iptables: { variant: 'nft', restore: 'iptables-nft-restore', reason: 'chosen with --iptables', estimatedFullSyncSeconds: 5.8 },
    namespace: 'kpt-latency-1',
    cluster: { services: 1000, byType: { ClusterIP: 820, NodePort: 120, LoadBalancer: 60 }, servicePorts: 1320, udpServicePorts: 150, endpoints: 10000, localEndpoints: 60, nodes: 167, slices: 1000 },
    agent: { args: ['main.js'], families: ['IPv4', 'IPv6'], firstSyncMs: 6000, peakRssMiB: 200, rssMiB: 190, rulesInVariant: true },
    churn: { sent: 400, seconds: 19.95, achievedRate: 20, drainMs: 900 },
    latencyMs: latencySummary(Array.from({ length: 400 }, (_, i) => 100 + i * 4)),
    otherFamilies: { IPv6: latencySummary([5, 6]) },
    missing: 0,
    metric: { count: 400, agrees: true, syncCount: 22 },
    syncs: { count: 21, full: 0, partial: 21, syncMs: summary([100, 200, 300]), toolMs: summary([90, 180, 270]) },
    elapsedMs: 57_000,
    environment: { node: 'v20', cpus: 2, platform: 'linux-x64' },
  };
  const text = formatLatencyTable(r);
  t.match(text, /1,000 services × 10 endpoints, 20\/s EndpointSlice updates for 20 s, iptables-nft, --iptables-min-sync-period=1s/);
  t.match(text, /network programming latency\s+n\s+p50\s+p90\s+p99\s+max/);
  t.match(text, /^IPv4 \(the slices' family\)\s+400\s+896 ms\s+1\.54 s\s+1\.68 s\s+1\.70 s$/m);
  t.match(text, /peak RSS \(VmHWM\) 200 MiB/);
  t.match(text, /21 \(0 full, 21 partial\)/);
  t.match(text, /= 400 \(agrees with the 400 log lines\)/);
  t.notMatch(text, /MISSING/);
  t.match(formatLatencyTable({ ...r, missing: 3, metric: { count: 397, agrees: false, syncCount: 22 } }), /DIFFERS[\s\S]*MISSING: 3 updates/);
  t.match(formatLatencyTable({ ...r, skipped: 'too slow', cluster: null, agent: null, churn: null }), /skipped: too slow\n$/);
});
