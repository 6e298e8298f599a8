/**
 * `kube-proxy-ts bench`: how long does a sync take at this size?
 *
 *   kube-proxy-ts bench --services N [--endpoints-per-service M] [--mode iptables|nftables]
 *       [--changes K] [--repeat R] [--seed S] [--json] [--no-apply]
 *       [--iptables legacy|nft] [--max-seconds S] [--namespace-prefix P]
 *   kube-proxy-ts bench --latency [...]   (network programming latency of the whole agent: latency-command.ts)
 *
 * Generates a synthetic cluster from the seed, and runs the agent's own
 * pipeline (store → snapshot → backend: iptables or nftables) against the
 * real kernel tool (iptables-restore or nft) in a throwaway network
 * namespace per repeat (root), or with --no-apply without any kernel tool. Progress goes to stderr; the table (or, with --json, one
 * JSON object: BenchResult) to stdout.
 *
 * Exit status: 0 when the cell ran or was skipped as too slow (the reason is
 * printed), 1 when it failed or was stopped at its budget, 2 for bad
 * arguments.
 */
import { Command, CommanderError, Option } from 'commander';
import { deleteLiveNamespacesSync } from './bench-tools.js';
import { formatTable } from './format.js';
import type { IptablesVariant } from './kernel-floor.js';
import { runBench } from './run-bench.js';
import type { BenchOptions } from './run-bench.js';
import { BENCH_MODES } from './scenario.js';
import type { BenchMode } from './scenario.js';

export interface BenchCommandIO {
  stdout(s: string): void;
  stderr(s: string): void;
  /** Whether stderr is a terminal (progress rewrites one line) or not (one line per phase). */
  stderrIsTTY: boolean;
}

export const defaultBenchIO: BenchCommandIO = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  stderrIsTTY: process.stderr.isTTY === true,
};

export const BENCH_USAGE =
  'kube-proxy-ts bench --services N [--endpoints-per-service M] [--mode iptables|nftables] [--changes K] [--repeat R] [--seed S] ' +
  '[--json] [--no-apply] [--iptables legacy|nft] [--max-seconds S] [--namespace-prefix P]';

class UsageError extends Error {}

function buildCommand(): Command {
  return new Command('kube-proxy-ts bench')
    .usage('--services N [options]')
    .description(
      'Benchmark the sync pipeline on a synthetic cluster (deterministic from --seed): a cold full sync, then single-endpoint changes, ' +
        'services added and services removed (partial syncs), against the real iptables or nft in a throwaway network namespace (needs root) ' +
        'or, with --no-apply, the pure pipeline. Reports agent time, kernel tool time, total, input bytes, rules and peak RSS (median and p90).',
    )
    .addOption(new Option('--mode <mode>', 'the proxy mode to bench').choices([...BENCH_MODES]).default('iptables'))
    .option('--services <n>', 'services in the synthetic cluster')
    .option('--endpoints-per-service <m>', 'endpoints of each service', '10')
    .option('--changes <k>', 'endpoint changes, services added and services removed, K of each', '10')
    .option('--repeat <r>', 'runs of the whole scenario, each in a fresh namespace', '3')
    .option('--seed <s>', 'seed of the synthetic cluster and its changes', '1')
    .option('--json', 'print the results as one JSON object', false)
    .option('--no-apply', 'run the pipeline only: render, but hand nothing to a kernel tool (no root needed)')
    .addOption(
      new Option('--iptables <variant>', 'iptables mode: iptables-legacy-restore or iptables-nft-restore (default: legacy from 2,000 services, else the host\'s iptables-restore)').choices(['legacy', 'nft']),
    )
    .option('--max-seconds <s>', 'budget of the run: skipped if the measured floor says it would take longer, stopped if it overruns', '300')
    .option('--namespace-prefix <p>', 'prefix of the namespaces created, one per repeat (default kpt-bench-<pid>)')
    .option('--latency', 'another mode: network programming latency of the whole agent under churn (see bench --latency --help)')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
}

function wholeNumber(raw: unknown, flag: string, min: number): number {
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) throw new UsageError(`${flag}: ${JSON.stringify(text)} must be a whole number ≥ ${min}`);
  return Number(text);
}

/** Parses the bench's arguments (without the leading `bench`). */
export function parseBenchArgs(argv: string[]): { kind: 'options'; options: BenchOptions; json: boolean } | { kind: 'exit'; code: number; output: string } {
  const cmd = buildCommand();
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  try {
    cmd.parse(argv, { from: 'user' });
    const raw = cmd.opts<Record<string, unknown>>();
    if (raw.services === undefined) throw new UsageError('--services is required: how many services the synthetic cluster has');
    const prefix = raw.namespacePrefix;
    if (prefix !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(String(prefix))) throw new UsageError('--namespace-prefix: letters, digits, ".", "_" and "-" only, at most 41');
    const options: BenchOptions = {
      mode: raw.mode as BenchMode,
      services: wholeNumber(raw.services, '--services', 1),
      endpointsPerService: wholeNumber(raw.endpointsPerService, '--endpoints-per-service', 0),
      changes: wholeNumber(raw.changes, '--changes', 0),
      repeat: wholeNumber(raw.repeat, '--repeat', 1),
      seed: wholeNumber(raw.seed, '--seed', 0),
      apply: raw.apply !== false,
      maxSeconds: wholeNumber(raw.maxSeconds, '--max-seconds', 1),
      ...(raw.iptables !== undefined ? { iptables: raw.iptables as IptablesVariant } : {}),
      ...(prefix !== undefined ? { namespacePrefix: String(prefix) } : {}),
    };
    if (options.mode !== 'iptables' && options.iptables) throw new UsageError(`--iptables: only in iptables mode, not ${options.mode}`);
    if (!options.apply && options.iptables) throw new UsageError('--iptables and --no-apply: nothing is applied, so no iptables variant is used');
    return { kind: 'options', options, json: raw.json === true };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'exit', code: 2, output: `kube-proxy-ts bench: ${err.message}\nusage: ${BENCH_USAGE}\n` };
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { kind: 'exit', code: 0, output: out };
      return { kind: 'exit', code: 2, output: out || `${err.message}\n` };
    }
    throw err;
  }
}

/** A progress reporter: one rewritten line on a terminal, else one line per phase. */
export function progressWriter(io: BenchCommandIO): { update(line: string): void; done(): void } {
  let last = '';
  let shown = false;
  return {
    update(line) {
      if (io.stderrIsTTY) {
        io.stderr(`\r\x1b[K${line}`);
        shown = true;
        return;
      }
      const key = line.replace(/ \d+\/\d+$/, '');
      if (key !== last) io.stderr(`${key}\n`);
      last = key;
    },
    done() {
      if (shown) io.stderr('\r\x1b[K');
    },
  };
}

export async function runBenchCommand(argv: string[], io: BenchCommandIO = defaultBenchIO): Promise<number> {
  // `--latency`: the whole agent against a fake API server (src/bench/latency-command.ts), loaded only when asked for.
  if (argv.includes('--latency')) {
    const latency = progressWriter(io);
    const { runLatencyCommand } = await import('./latency-command.js');
    return runLatencyCommand(argv.filter((a) => a !== '--latency'), io, (l) => latency.update(l), () => latency.done());
  }
  const parsed = parseBenchArgs(argv);
  if (parsed.kind === 'exit') {
    (parsed.code === 0 ? io.stdout : io.stderr)(parsed.output);
    return parsed.code;
  }
  const progress = progressWriter(io);
  // A signal must not leave a namespace behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    progress.done();
    deleteLiveNamespacesSync();
    io.stderr(`kube-proxy-ts bench: stopped by ${signal}; namespaces deleted\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', deleteLiveNamespacesSync);
  try {
    const result = await runBench({ ...parsed.options, progress: (l) => progress.update(l) });
    progress.done();
    io.stdout(parsed.json ? `${JSON.stringify(result, null, 2)}\n` : formatTable(result));
    if (result.skipped && parsed.json) io.stderr(`skipped: ${result.skipped}\n`);
    if (result.aborted) {
      io.stderr(`kube-proxy-ts bench: aborted: ${result.aborted}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    progress.done();
    io.stderr(`kube-proxy-ts bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', deleteLiveNamespacesSync);
  }
}
