/**
 * `kube-proxy-ts bench --latency` as root: a tiny run of the whole agent
 * (built, in a throwaway network namespace, against the fake API server)
 * produces a latency for every update with counts that agree, in iptables
 * and in nftables mode, counts the rules the kernel holds with the mode's
 * own tool, and leaves no namespace, process or temporary directory behind;
 * a run the measured floor says is too slow is skipped without creating
 * anything; --iptables with --mode nftables is refused. Never asserts
 * timings (beyond a latency being more than 0).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import { runBenchCommand } from '../../src/bench/bench-command.js';
import type { BenchCommandIO } from '../../src/bench/bench-command.js';
import type { LatencyResult } from '../../src/bench/latency.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create a network namespace and run the agent in it');
  process.exit(0);
}

const namespaces = (prefix: string): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
const tmpDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('kpt-latency-'));
/** Processes whose command line names this temporary directory (the agent's --kubeconfig, the bridge's socket). */
const processesUsing = (dir: string): string[] => {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(dir)) out.push(`${p}: ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      // gone
    }
  }
  return out;
};

function io(onProgress?: (line: string) => void): BenchCommandIO & { out: string; err: string } {
  const o = {
    out: '',
    err: '',
    stderrIsTTY: false,
    stdout: (s: string) => void (o.out += s),
    stderr: (s: string) => {
      o.err += s;
      onProgress?.(s);
    },
  };
  return o;
}

const ns = `kpt-lat-e2e-${process.pid}`;
t.teardown(() => {
  for (const n of namespaces(ns)) execFileSync('ip', ['netns', 'del', n]);
});

t.test('a tiny latency bench: every update gets a latency, the counts agree, nothing is left behind', async (t) => {
  const dirsBefore = new Set(tmpDirs());
  let seenNs = false;
  let seenDir: string | undefined;
  const x = io((line) => {
    if (/churn:/.test(line) && !seenNs) {
      seenNs = namespaces(ns).includes(ns);
      seenDir = tmpDirs().find((d) => !dirsBefore.has(d));
    }
  });
  const code = await runBenchCommand(['--latency', '--services', '20', '--endpoints-per-service', '3', '--rate', '5', '--duration', '3', '--namespace', ns, '--json'], x);
  t.equal(code, 0, x.err);
  t.ok(seenNs, 'the namespace existed during the churn');
  const r = JSON.parse(x.out) as LatencyResult;
  t.equal(r.kind, 'latency');
  t.equal(r.mode, 'iptables', 'the default mode');
  t.equal(r.tool.command, `iptables-${r.iptables!.variant}-restore`);
  t.ok(r.agent!.args.includes('--proxy-mode=iptables'));
  t.equal(r.namespace, ns);
  t.equal(r.skipped, undefined);
  t.equal(r.cluster!.services, 20);
  t.equal(r.cluster!.endpoints, 60);
  t.equal(r.churn!.sent, 15, 'rate × duration updates');
  t.equal(r.latencyMs.count, 15, 'one IPv4 latency per update');
  t.equal(r.missing, 0);
  t.equal(r.metric.count, 15, 'kubeproxy_network_programming_duration_seconds_count agrees');
  t.equal(r.metric.agrees, true);
  for (const k of ['p50', 'p90', 'p99', 'max', 'min'] as const) t.ok(Number.isFinite(r.latencyMs[k]) && r.latencyMs[k] >= 0, `${k} is a number`);
  t.ok(r.latencyMs.min <= r.latencyMs.p50 && r.latencyMs.p50 <= r.latencyMs.p90 && r.latencyMs.p90 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max, 'ordered');
  t.ok(r.syncs.count >= 1 && r.syncs.count <= 15, `syncs during the churn: ${r.syncs.count}`);
  t.equal(r.syncs.full + r.syncs.partial, r.syncs.count);
  t.ok(r.metric.syncCount !== null && r.metric.syncCount > r.syncs.count, 'the metric also counts the first sync');
  t.ok(r.agent!.families.includes('IPv4'));
  t.ok(r.agent!.peakRssMiB! > 10, `agent peak RSS ${r.agent!.peakRssMiB} MiB`);
  t.equal(r.agent!.rulesInVariant, true, `the rules are in iptables-${r.iptables!.variant}`);
  const k = r.agent!.kernel!;
  t.equal(k.command, `iptables-${r.iptables!.variant}-save`);
  t.ok(k.tables.some((x) => x.table === 'nat' && x.rules > 0), 'KUBE-* rules in nat');
  t.ok(k.rules > 20 && k.chains > 20, `${k.rules} rules in ${k.chains} chains for 20 services`);
  t.equal(k.elements, null, 'iptables has no sets');
  t.same(namespaces(ns), [], 'the namespace is gone');
  t.ok(seenDir, 'a temporary directory existed');
  t.notOk(seenDir && tmpDirs().includes(seenDir), 'the temporary directory (socket, kubeconfig) is gone');
  if (seenDir) t.same(processesUsing(seenDir), [], 'no agent or bridge left running');
});

t.test('the other variant, as a table', async (t) => {
  const host = execFileSync('iptables-restore', ['--version'], { encoding: 'utf8' });
  const variant = /nf_tables/.test(host) ? 'legacy' : 'nft';
  const x = io();
  const code = await runBenchCommand(['--latency', '--services', '10', '--endpoints-per-service', '2', '--rate', '4', '--duration', '2', '--iptables', variant, '--namespace', ns], x);
  t.equal(code, 0, x.err);
  t.match(x.out, new RegExp(`iptables-${variant}, --iptables-min-sync-period=1s`));
  t.match(x.out, /^IPv4 \(the slices' family\)\s+8\s/m, '8 latencies');
  t.match(x.out, /\(agrees with the 8 log lines\)/);
  t.notMatch(x.out, /MISSING|WARNING/);
  t.same(namespaces(ns), []);
});

t.test('too slow by the measured floor: skipped, nothing created', async (t) => {
  const x = io();
  const code = await runBenchCommand(['--latency', '--services', '10000', '--iptables', 'nft', '--max-seconds', '60', '--namespace', ns, '--json'], x);
  t.equal(code, 0, x.err);
  const r = JSON.parse(x.out) as LatencyResult;
  t.match(r.skipped, /first full sync alone would take about/);
  t.equal(r.agent, null);
  t.same(namespaces(ns), []);
});

t.test('nftables mode: every update programmed through nft, the rules counted with nft, nothing about iptables', async (t) => {
  // When the bench counts the rules, the agent still runs: list its table here too, independently.
  let listed: number | undefined;
  const x = io((line) => {
    if (!line.startsWith('counting the rules in the kernel')) return;
    const out = execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'ip', 'kube-proxy'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    listed = (JSON.parse(out) as { nftables: Record<string, unknown>[] }).nftables.filter((o) => 'rule' in o).length;
  });
  const args = ['--latency', '--mode', 'nftables', '--services', '20', '--endpoints-per-service', '3', '--rate', '5', '--duration', '3', '--namespace', ns, '--json'];
  const code = await runBenchCommand(args, x);
  t.equal(code, 0, x.err);
  const r = JSON.parse(x.out) as LatencyResult;
  t.equal(r.schema, 2);
  t.equal(r.mode, 'nftables');
  t.equal(r.iptables, null, 'no iptables variant');
  t.equal(r.tool.command, 'nft');
  t.ok(r.agent!.args.includes('--proxy-mode=nftables'), 'the agent ran in nftables mode');
  t.equal(r.skipped, undefined);
  t.equal(r.churn!.sent, 15);
  t.equal(r.latencyMs.count, 15, 'every update reported programmed');
  t.equal(r.missing, 0);
  t.equal(r.metric.count, 15, 'kubeproxy_network_programming_duration_seconds_count agrees');
  t.equal(r.metric.agrees, true);
  t.ok(r.latencyMs.p50 > 0, `p50 ${r.latencyMs.p50} ms`);
  t.ok(r.latencyMs.p50 <= r.latencyMs.max);
  t.ok(r.syncs.count >= 1 && r.syncs.count === r.syncs.full + r.syncs.partial, `syncs during the churn: ${r.syncs.count}`);
  t.ok(r.agent!.families.includes('IPv4'));
  t.equal(r.agent!.rulesInVariant, null, 'no iptables variant to check');
  const k = r.agent!.kernel!;
  t.equal(k.command, 'nft -j list table ip kube-proxy');
  t.same(k.tables.map((x) => x.table), ['ip kube-proxy']);
  t.ok(listed !== undefined, 'the table was there while the agent ran');
  t.equal(k.rules, listed, `the rule count is nft's (${k.rules})`);
  t.ok(k.rules > 0 && k.chains > 0 && k.sets! > 0, `${k.rules} rules, ${k.chains} chains, ${k.sets} sets and maps`);
  t.ok(k.elements! >= 20, `${k.elements} elements: at least the 20 services' cluster IPs`);
  t.same(namespaces(ns), [], 'the namespace is gone');

  const table = io();
  t.equal(await runBenchCommand(['--latency', '--mode', 'nftables', '--services', '10', '--endpoints-per-service', '2', '--rate', '4', '--duration', '2', '--namespace', ns], table), 0, table.err);
  t.match(table.out, /^IPv4 \(the slices' family\)\s+8\s/m, '8 latencies');
  t.match(table.out, /, nftables, --iptables-min-sync-period=1s/);
  t.match(table.out, /of which nft -f med/);
  t.match(table.out, /kernel at the end \(IPv4, nft -j list table ip kube-proxy\): [\d,]+ rules/);
  t.notMatch(table.out, /MISSING|WARNING|iptables-(nft|legacy)/);
  t.same(namespaces(ns), []);
});

t.test('--iptables with --mode nftables: a usage error naming both, nothing created', async (t) => {
  const x = io();
  const code = await runBenchCommand(['--latency', '--mode', 'nftables', '--iptables', 'nft', '--namespace', ns], x);
  t.equal(code, 2);
  t.match(x.err, /--iptables nft and --mode nftables/);
  t.equal(x.out, '');
  t.same(namespaces(ns), []);
});
