/**
 * The standard network programming latency runs (`npm run bench:latency`, as
 * root): 1,000 services × 10 endpoints, 20 EndpointSlice updates a second for
 * 20 s, in every proxy mode (iptables with iptables-nft and with
 * iptables-legacy, and nftables), each one `kube-proxy-ts bench --latency
 * --json` process of its own. Prints one table, a row per mode (p50, p90,
 * p99, max, syncs, first sync, the agent's peak RSS, the rules the kernel
 * held at the end), the exact command of each run, and how long it all
 * took; with --out, also writes every run's JSON (LatencyResult) to FILE.
 *
 *   node dist/scripts/bench-latency.js [--services 1000] [--endpoints 10] [--rate 20] [--duration 20]
 *       [--modes iptables-nft,iptables-legacy,nftables] [--min-sync-period 1s] [--seed 1] [--out FILE]
 *
 * `--variants nft,legacy` (the former flag) still works: the iptables modes only.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { formatMs } from '../src/bench/format.js';
import type { LatencyResult } from '../src/bench/latency.js';
import { formatSeconds } from '../src/bench/run-bench.js';

/** A row of the table: a proxy mode, and for iptables which iptables (as bench-matrix names them). */
const KINDS = ['iptables-nft', 'iptables-legacy', 'nftables'] as const;
type Kind = (typeof KINDS)[number];

/** The bench's flags that select a kind. */
function kindArgs(kind: Kind): string[] {
  return kind === 'nftables' ? ['--mode', 'nftables'] : ['--mode', 'iptables', '--iptables', kind.slice('iptables-'.length)];
}

interface Options {
  services: number;
  endpoints: number;
  rate: number;
  duration: number;
  modes: Kind[];
  minSyncPeriod: string;
  seed: number;
  out?: string;
}

const USAGE =
  'usage: node dist/scripts/bench-latency.js [--services N] [--endpoints M] [--rate R] [--duration S] [--modes iptables-nft,iptables-legacy,nftables] [--min-sync-period D] [--seed S] [--out FILE]';

/** A comma-separated list of kinds; with `prefix`, each value is a kind without it (--variants nft → iptables-nft). */
function kindList(flag: string, value: string, prefix = ''): Kind[] {
  const allowed = KINDS.filter((k) => k.startsWith(prefix));
  const ks = value.split(',').map((v) => `${prefix}${v}`);
  if (ks.some((k) => !(allowed as readonly string[]).includes(k))) throw new Error(`${flag}: some of ${allowed.map((k) => k.slice(prefix.length)).join(', ')}, comma-separated`);
  return ks as Kind[];
}

function parse(argv: string[]): Options {
  const o: Options = { services: 1000, endpoints: 10, rate: 20, duration: 20, modes: [...KINDS], minSyncPeriod: '1s', seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag}: a value is required`);
    const num = (): number => {
      const n = Number(value);
      if (!(n > 0)) throw new Error(`${flag}: ${JSON.stringify(value)} must be a number > 0`);
      return n;
    };
    switch (flag) {
      case '--services':
        o.services = num();
        break;
      case '--endpoints':
        o.endpoints = num();
        break;
      case '--rate':
        o.rate = num();
        break;
      case '--duration':
        o.duration = num();
        break;
      case '--seed':
        o.seed = Number(value);
        break;
      case '--min-sync-period':
        o.minSyncPeriod = value;
        break;
      case '--out':
        o.out = value;
        break;
      case '--modes':
        o.modes = kindList(flag, value);
        break;
      // The former flag: the iptables modes only.
      case '--variants':
        o.modes = kindList(flag, value, 'iptables-');
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  return o;
}

/** The IPv4 rules the kernel held at the end (and, nftables, the set and map elements), as the mode's own tool counted them. */
function kernelRules(x: LatencyResult): string {
  const k = x.agent?.kernel;
  if (!k) return '-';
  const rules = k.rules.toLocaleString('en-US');
  return k.elements === null ? rules : `${rules} + ${k.elements.toLocaleString('en-US')} elements`;
}

function repoRoot(): string {
  // dist/scripts → the repository root.
  return join(dirname(fileURLToPath(import.meta.url)), '../..');
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench-latency: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const started = performance.now();
  const agentMain = join(repoRoot(), 'dist/src/agent/main.js');
  const results: { kind: Kind; command: string; result?: LatencyResult; error?: string }[] = [];
  for (const kind of opts.modes) {
    const args = [
      'bench',
      '--latency',
      '--services',
      String(opts.services),
      '--endpoints-per-service',
      String(opts.endpoints),
      '--rate',
      String(opts.rate),
      '--duration',
      String(opts.duration),
      ...kindArgs(kind),
      '--iptables-min-sync-period',
      opts.minSyncPeriod,
      '--seed',
      String(opts.seed),
      '--json',
    ];
    const command = `node dist/src/agent/main.js ${args.join(' ')}`;
    process.stderr.write(`== ${command}  (load average ${loadavg()[0]!.toFixed(2)})\n`);
    const r = await execa(process.execPath, [agentMain, ...args], { reject: false, stderr: 'inherit', maxBuffer: 64 * 1024 * 1024 });
    try {
      results.push({ kind, command, result: JSON.parse(String(r.stdout)) as LatencyResult, ...(r.exitCode !== 0 ? { error: `exit status ${r.exitCode}` } : {}) });
    } catch {
      results.push({ kind, command, error: `exit status ${r.exitCode}, no result` });
    }
  }

  const header = ['mode', 'cluster', 'updates', 'n', 'p50', 'p90', 'p99', 'max', 'syncs', 'sync med', 'first sync', 'agent peak RSS', 'kernel rules'];
  const rows = results.map(({ kind, result: x, error }) => {
    if (!x) return [kind, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', error ?? '-', '-'];
    if (x.skipped) return [kind, `${x.params.services} × ${x.params.endpointsPerService}`, 'skipped', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-'];
    const l = x.latencyMs;
    return [
      `${kind}${error ? ` (${error})` : ''}`,
      `${x.params.services.toLocaleString('en-US')} × ${x.params.endpointsPerService}`,
      `${x.churn?.sent ?? 0} at ${x.params.rate}/s`,
      String(l.count),
      formatMs(l.p50),
      formatMs(l.p90),
      formatMs(l.p99),
      formatMs(l.max),
      `${x.syncs.count} (${x.syncs.full} full)`,
      formatMs(x.syncs.syncMs.median),
      formatMs(x.agent?.firstSyncMs ?? NaN),
      x.agent?.peakRssMiB != null ? `${x.agent.peakRssMiB.toFixed(0)} MiB` : '-',
      kernelRules(x),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out: string[] = [];
  out.push(`network programming latency (API change → rules in the kernel, IPv4), --iptables-min-sync-period=${opts.minSyncPeriod}, ${availableParallelism()} CPUs`);
  out.push(line(header));
  for (const r of rows) out.push(line(r));
  for (const r of results) {
    out.push(`  ${r.kind}: ${r.command}`);
    if (r.result?.skipped) out.push(`    skipped: ${r.result.skipped}`);
    if (r.result && !r.result.skipped && (!r.result.metric.agrees || r.result.missing > 0)) {
      out.push(`    metric count ${r.result.metric.count}, ${r.result.missing} updates missing`);
    }
  }
  out.push(`took ${formatSeconds((performance.now() - started) / 1000)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (opts.out) {
    writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
    process.stderr.write(`wrote ${opts.out}\n`);
  }
  return results.every((r) => r.result && !r.error) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench-latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
