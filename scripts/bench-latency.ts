/**
 * The standard network programming latency runs (`npm run bench:latency`, as
 * root): 1,000 services × 10 endpoints, 20 EndpointSlice updates a second for
 * 20 s, with iptables-nft and iptables-legacy, each one
 * `kube-proxy-ts bench --latency --json` process of its own. Prints one table
 * (p50, p90, p99, max, syncs, first sync, the agent's peak RSS), the exact
 * command of each run, and how long it all took; with --out, also writes
 * every run's JSON (LatencyResult) to FILE.
 *
 *   node dist/scripts/bench-latency.js [--services 1000] [--endpoints 10] [--rate 20] [--duration 20]
 *       [--variants nft,legacy] [--min-sync-period 1s] [--seed 1] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { formatMs } from '../src/bench/format.js';
import type { IptablesVariant } from '../src/bench/kernel-floor.js';
import type { LatencyResult } from '../src/bench/latency.js';
import { formatSeconds } from '../src/bench/run-bench.js';

interface Options {
  services: number;
  endpoints: number;
  rate: number;
  duration: number;
  variants: IptablesVariant[];
  minSyncPeriod: string;
  seed: number;
  out?: string;
}

const USAGE =
  'usage: node dist/scripts/bench-latency.js [--services N] [--endpoints M] [--rate R] [--duration S] [--variants nft,legacy] [--min-sync-period D] [--seed S] [--out FILE]';

function parse(argv: string[]): Options {
  const o: Options = { services: 1000, endpoints: 10, rate: 20, duration: 20, variants: ['nft', 'legacy'], minSyncPeriod: '1s', seed: 1 };
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
      case '--variants': {
        const vs = value.split(',');
        if (vs.length === 0 || vs.some((v) => v !== 'nft' && v !== 'legacy')) throw new Error(`--variants: nft and/or legacy, comma-separated`);
        o.variants = vs as IptablesVariant[];
        break;
      }
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  return o;
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
  const results: { variant: IptablesVariant; command: string; result?: LatencyResult; error?: string }[] = [];
  for (const variant of opts.variants) {
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
      '--iptables',
      variant,
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
      results.push({ variant, command, result: JSON.parse(String(r.stdout)) as LatencyResult, ...(r.exitCode !== 0 ? { error: `exit status ${r.exitCode}` } : {}) });
    } catch {
      results.push({ variant, command, error: `exit status ${r.exitCode}, no result` });
    }
  }

  const header = ['iptables', 'cluster', 'updates', 'n', 'p50', 'p90', 'p99', 'max', 'syncs', 'sync med', 'first sync', 'agent peak RSS'];
  const rows = results.map(({ variant, result: x, error }) => {
    if (!x) return [variant, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', error ?? '-'];
    if (x.skipped) return [variant, `${x.params.services} × ${x.params.endpointsPerService}`, 'skipped', '-', '-', '-', '-', '-', '-', '-', '-', '-'];
    const l = x.latencyMs;
    return [
      `${variant}${error ? ` (${error})` : ''}`,
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
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out: string[] = [];
  out.push(`network programming latency (API change → rules in the kernel, IPv4), --iptables-min-sync-period=${opts.minSyncPeriod}, ${availableParallelism()} CPUs`);
  out.push(line(header));
  for (const r of rows) out.push(line(r));
  for (const r of results) {
    out.push(`  ${r.variant}: ${r.command}`);
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
