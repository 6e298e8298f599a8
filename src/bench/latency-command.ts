/**
 * `kube-proxy-ts bench --latency`: network programming latency of the whole
 * agent under steady EndpointSlice churn (see latency.ts).
 *
 *   kube-proxy-ts bench --latency [--services N] [--endpoints-per-service M] [--rate R] [--duration S]
 *       [--mode iptables|nftables] [--iptables legacy|nft] [--iptables-min-sync-period D] [--seed S]
 *       [--max-seconds S] [--namespace NAME] [--agent-log FILE] [--json]
 *
 * Needs root and a build (it runs dist/src/agent/main.js). Progress goes to
 * stderr; the table (or, with --json, one JSON object: LatencyResult) to
 * stdout. Exit status: 0 when it ran (or was skipped as too slow, with the
 * reason), 1 when it failed (nftables mode without a working nft, too) or some
 * update was never reported programmed, 2 for bad arguments (--iptables with
 * --mode nftables, too), 130/143 when stopped by a
 * signal (after tearing everything down).
 */
import { Command, CommanderError, Option } from 'commander';
import { parseDuration } from '../agent/util/duration.js';
import type { BenchCommandIO } from './bench-command.js';
import { formatMs } from './format.js';
import type { IptablesVariant } from './kernel-floor.js';
import { cleanupLatencySync, latencyLabel, runLatencyBench } from './latency.js';
import type { LatencyOptions, LatencyResult } from './latency.js';
import type { LatencySummary } from './latency-stats.js';
import { formatSeconds } from './run-bench.js';
import { BENCH_MODES } from './scenario.js';
import type { BenchMode } from './scenario.js';

export const LATENCY_USAGE =
  'kube-proxy-ts bench --latency [--services N] [--endpoints-per-service M] [--rate R] [--duration S] [--mode iptables|nftables] ' +
  '[--iptables legacy|nft] [--iptables-min-sync-period D] [--seed S] [--max-seconds S] [--namespace NAME] [--agent-log FILE] [--json]';

class UsageError extends Error {}

function buildCommand(): Command {
  return new Command('kube-proxy-ts bench --latency')
    .usage('[options]')
    .description(
      'Network programming latency of the whole agent: the built agent runs in a throwaway network namespace against a fake API server ' +
        'holding a synthetic cluster (deterministic from --seed); after its first sync, R EndpointSlices a second are updated for S seconds, ' +
        'each annotated endpoints.kubernetes.io/last-change-trigger-time = the moment it is sent, and the time until the agent has those rules ' +
        'in the kernel (its "network programming latency" log lines, cross-checked with kubeproxy_network_programming_duration_seconds) is reported: ' +
        'p50, p90, p99, max, the syncs done, the agent\'s peak RSS and the rules the kernel holds at the end (read with iptables-save or nft). ' +
        'Needs root and npm run build; --mode nftables needs nft.',
    )
    .option('--services <n>', 'services in the synthetic cluster', '1000')
    .option('--endpoints-per-service <m>', 'endpoints of each service', '10')
    .option('--rate <r>', 'EndpointSlice updates a second (may be fractional)', '20')
    .option('--duration <s>', 'seconds of churn', '20')
    .addOption(new Option('--mode <mode>', 'the agent\'s --proxy-mode').choices([...BENCH_MODES]).default('iptables'))
    .addOption(
      new Option('--iptables <variant>', 'iptables mode: the iptables the agent uses (default: legacy from 2,000 services, else the host\'s iptables-restore)').choices(['legacy', 'nft']),
    )
    .option('--iptables-min-sync-period <d>', 'the agent\'s --iptables-min-sync-period, which paces both modes (upstream\'s default)', '1s')
    .option('--seed <s>', 'seed of the synthetic cluster and of the churn', '1')
    .option('--max-seconds <s>', 'budget for the agent\'s start (until its first sync); iptables mode: skipped if the measured floor says the first sync alone would take longer', '300')
    .option('--namespace <name>', 'the network namespace to create (default kpt-latency-<pid>)')
    .option('--agent-log <file>', 'also write every line the agent logs to FILE')
    .option('--json', 'print the results as one JSON object', false)
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
}

function wholeNumber(raw: unknown, flag: string, min: number): number {
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag}: ${JSON.stringify(text)} must be a whole number ≥ ${min}`);
  return Number(text);
}

function positive(raw: unknown, flag: string, max: number): number {
  const text = String(raw);
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0) || n > max) throw new UsageError(`${flag}: ${JSON.stringify(text)} must be a number > 0 and ≤ ${max}`);
  return n;
}

/** Parses the latency bench's arguments (without `bench` and without `--latency`). */
export function parseLatencyArgs(argv: string[]): { kind: 'options'; options: LatencyOptions; json: boolean } | { kind: 'exit'; code: number; output: string } {
  const cmd = buildCommand();
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  try {
    cmd.parse(argv, { from: 'user' });
    const raw = cmd.opts<Record<string, unknown>>();
    const mode = raw.mode as BenchMode;
    if (mode !== 'iptables' && raw.iptables !== undefined) throw new UsageError(`--iptables ${String(raw.iptables)} and --mode ${mode}: --iptables chooses iptables mode's variant; nftables mode uses nft`);
    const ns = raw.namespace;
    if (ns !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(String(ns))) throw new UsageError('--namespace: letters, digits, ".", "_" and "-" only, at most 41');
    const minSyncPeriod = String(raw.iptablesMinSyncPeriod);
    if (parseDuration(minSyncPeriod) === undefined) throw new UsageError(`--iptables-min-sync-period: ${JSON.stringify(minSyncPeriod)} is not a duration (e.g. 1s, 500ms, 0s)`);
    const options: LatencyOptions = {
      services: wholeNumber(raw.services, '--services', 1),
      endpointsPerService: wholeNumber(raw.endpointsPerService, '--endpoints-per-service', 1),
      rate: positive(raw.rate, '--rate', 10_000),
      durationSeconds: positive(raw.duration, '--duration', 86_400),
      seed: wholeNumber(raw.seed, '--seed', 0),
      mode,
      minSyncPeriod,
      maxSeconds: wholeNumber(raw.maxSeconds, '--max-seconds', 1),
      ...(raw.iptables !== undefined ? { iptables: raw.iptables as IptablesVariant } : {}),
      ...(ns !== undefined ? { namespace: String(ns) } : {}),
      ...(raw.agentLog !== undefined ? { agentLog: String(raw.agentLog) } : {}),
    };
    return { kind: 'options', options, json: raw.json === true };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'exit', code: 2, output: `kube-proxy-ts bench --latency: ${err.message}\nusage: ${LATENCY_USAGE}\n` };
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { kind: 'exit', code: 0, output: out };
      return { kind: 'exit', code: 2, output: out || `${err.message}\n` };
    }
    throw err;
  }
}

const n = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const mib = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(0)} MiB`);

function pad(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

/** The kernel tool's share of a sync, named as the table says it. */
function toolName(r: LatencyResult): string {
  return r.mode === 'nftables' ? 'nft -f' : r.tool.command;
}

function latencyRow(label: string, s: LatencySummary): string[] {
  return [label, n(s.count), formatMs(s.p50), formatMs(s.p90), formatMs(s.p99), formatMs(s.max)];
}

export function formatLatencyTable(r: LatencyResult): string {
  const p = r.params;
  const label = latencyLabel(r);
  const lines: string[] = [];
  lines.push(
    `kube-proxy-ts bench --latency: ${n(p.services)} services × ${n(p.endpointsPerService)} endpoints, ${p.rate}/s EndpointSlice updates for ${p.durationSeconds} s, ` +
      `${label}, --iptables-min-sync-period=${p.minSyncPeriod}`,
  );
  lines.push(`  ${label}: ${r.tool.reason}`);
  if (r.skipped) {
    lines.push(`skipped: ${r.skipped}`);
    return `${lines.join('\n')}\n`;
  }
  const c = r.cluster;
  if (c) {
    lines.push(
      `cluster (seed ${p.seed}): ${n(c.services)} services (${n(c.byType.ClusterIP)} ClusterIP, ${n(c.byType.NodePort)} NodePort, ${n(c.byType.LoadBalancer)} LoadBalancer), ` +
        `${n(c.servicePorts)} service ports, ${n(c.endpoints)} endpoints in ${n(c.slices)} EndpointSlices on ${n(c.nodes)} nodes`,
    );
  }
  const a = r.agent;
  if (a) {
    lines.push(
      `agent: the built agent (--v=4) in network namespace ${r.namespace}, watching the fake API server through a unix-socket bridge; ` +
        `families ${a.families.join(',') || '-'}; first sync ${formatMs(a.firstSyncMs)} after start; peak RSS (VmHWM) ${mib(a.peakRssMiB)}, at the end ${mib(a.rssMiB)}`,
    );
  }
  if (r.churn) {
    lines.push(
      `churn: ${n(r.churn.sent)} updates (one endpoint replaced each) in ${r.churn.seconds.toFixed(1)} s (${r.churn.achievedRate.toFixed(1)}/s), ` +
        `trigger time = send time; last one programmed ${formatMs(r.churn.drainMs)} after it was sent`,
    );
  }
  lines.push('');
  const rows = [['network programming latency', 'n', 'p50', 'p90', 'p99', 'max'], latencyRow('IPv4 (the slices\' family)', r.latencyMs)];
  for (const [f, s] of Object.entries(r.otherFamilies)) rows.push(latencyRow(`${f} (the same changes, counted again)`, s));
  lines.push(...pad(rows));
  lines.push('');
  const s = r.syncs;
  lines.push(
    `syncs during the churn (IPv4): ${n(s.count)} (${n(s.full)} full, ${n(s.partial)} partial); sync time med ${formatMs(s.syncMs.median)}, p90 ${formatMs(s.syncMs.p90)}, max ${formatMs(s.syncMs.max)}; ` +
      `of which ${toolName(r)} med ${formatMs(s.toolMs.median)}, p90 ${formatMs(s.toolMs.p90)}`,
  );
  const k = a?.kernel;
  if (k) {
    const sets = k.sets === null ? '' : `, ${n(k.elements ?? NaN)} elements in ${n(k.sets)} sets and maps`;
    const tables = k.tables.map((t) => `${t.table} ${n(t.rules)}`).join(', ') || 'none of the agent\'s';
    lines.push(`kernel at the end (IPv4, ${k.command}): ${n(k.rules)} rules in ${n(k.chains)} chains${sets} (rules by table: ${tables})`);
  }
  const m = r.metric;
  lines.push(
    `metrics: kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"} = ${m.count === null ? 'unreadable' : n(m.count)} ` +
      `(${m.agrees ? 'agrees with' : 'DIFFERS from'} the ${n(r.latencyMs.count)} log lines); kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} = ${m.syncCount === null ? '-' : n(m.syncCount)}`,
  );
  if (r.missing > 0) lines.push(`MISSING: ${n(r.missing)} updates were sent but no latency was logged for them by the end of the drain`);
  if (a && a.rulesInVariant === false) lines.push(`WARNING: the agent's chains were not found with ${label}-save`);
  if (a && r.mode === 'nftables' && !(a.kernel && a.kernel.rules > 0)) lines.push(`WARNING: the agent's rules were not found with ${a.kernel?.command ?? 'nft'}`);
  lines.push(`elapsed ${formatSeconds(r.elapsedMs / 1000)}`);
  return `${lines.join('\n')}\n`;
}

export async function runLatencyCommand(argv: string[], io: BenchCommandIO, progressLine: (line: string) => void, progressDone: () => void): Promise<number> {
  const parsed = parseLatencyArgs(argv);
  if (parsed.kind === 'exit') {
    (parsed.code === 0 ? io.stdout : io.stderr)(parsed.output);
    return parsed.code;
  }
  // A signal must leave nothing behind: the agent, the bridge, the namespace, the socket.
  const onSignal = (signal: NodeJS.Signals): void => {
    progressDone();
    cleanupLatencySync();
    io.stderr(`kube-proxy-ts bench --latency: stopped by ${signal}; agent stopped, namespace deleted\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupLatencySync);
  try {
    const result = await runLatencyBench({ ...parsed.options, progress: progressLine });
    progressDone();
    io.stdout(parsed.json ? `${JSON.stringify(result, null, 2)}\n` : formatLatencyTable(result));
    if (result.skipped && parsed.json) io.stderr(`skipped: ${result.skipped}\n`);
    if (result.missing > 0) {
      io.stderr(`kube-proxy-ts bench --latency: ${result.missing} of ${result.churn?.sent ?? '?'} updates were never reported programmed\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    progressDone();
    io.stderr(`kube-proxy-ts bench --latency: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', cleanupLatencySync);
  }
}
