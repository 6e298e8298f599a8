/**
 * Runs one bench cell: R repeats of the scenario in one proxy mode, each in
 * a fresh network namespace (or with nothing applied, --no-apply), and
 * summarises them. An iptables cell whose estimated kernel time (from the
 * measured floor) exceeds its budget is skipped before it starts (there is
 * no such floor for nftables); a cell that overruns its budget anyway is
 * stopped (the running tool is killed) and reported as aborted.
 */
import { availableParallelism } from 'node:os';
import { createNamespace, deleteNamespace, hostVariant, namespaceNft, namespaceTool, recordingNft, recordingTool } from './bench-tools.js';
import { chooseVariant, estimateCellSeconds, FLOOR_CITATION } from './kernel-floor.js';
import type { IptablesVariant } from './kernel-floor.js';
import { emptySamples, iptablesTarget, nftablesTarget, PHASE_LABELS, PHASES, runScenario } from './scenario.js';
import type { BenchMode, BenchTarget, OpSample, PhaseId } from './scenario.js';
import { summary } from './stats.js';
import type { Summary } from './stats.js';
import type { ClusterSummary } from './synthetic-cluster.js';

export interface BenchOptions {
  mode: BenchMode;
  services: number;
  endpointsPerService: number;
  changes: number;
  repeat: number;
  seed: number;
  /** False: --no-apply, the pure pipeline only. */
  apply: boolean;
  /** --iptables (iptables mode only); undefined: chosen (see chooseVariant). */
  iptables?: IptablesVariant;
  /** Budget for the whole cell, seconds. */
  maxSeconds: number;
  /** Progress text (one short line). */
  progress?: (line: string) => void;
  /** Prefix of the namespaces created (one per repeat); default `kpt-bench-<pid>`. */
  namespacePrefix?: string;
}

export interface PhaseStats {
  samples: number;
  totalMs: Summary;
  agentMs: Summary;
  toolMs: Summary;
  bytes: Summary;
  rules: Summary;
  /** Median of agentMs / totalMs. */
  agentShare: number;
  /** Highest peak RSS seen by the end of an operation of this phase in the first run, MiB. */
  peakRssMiB: number;
}

export interface BenchResult {
  bench: 'kube-proxy-ts';
  /** 2: `mode` may be nftables, `tool` added, `iptables` null outside iptables mode. */
  schema: 2;
  mode: BenchMode;
  apply: boolean;
  /** The kernel tool the syncs went through, whatever the mode. */
  tool: {
    /** `iptables-legacy-restore`, `iptables-nft-restore` or `nft`; null with --no-apply. */
    command: string | null;
    reason: string;
    /** Estimated kernel-tool seconds for the cell, from the measured floor (null: --no-apply, or no floor for this tool). */
    estimatedSeconds: number | null;
  };
  /** iptables mode only (null in another mode). */
  iptables: {
    /** null with --no-apply. */
    variant: IptablesVariant | null;
    restore: string | null;
    reason: string;
    /** Estimated kernel-tool seconds for the cell, from the measured floor (null with --no-apply). */
    estimatedSeconds: number | null;
  } | null;
  params: { services: number; endpointsPerService: number; changes: number; repeat: number; seed: number; maxSeconds: number };
  cluster: (ClusterSummary & { loadMs: Summary }) | null;
  phases: Record<PhaseId, PhaseStats> | null;
  /**
   * Peak RSS of the process during the first run, MiB: one cluster in a
   * fresh process, as an agent runs. Later runs build another cluster in the
   * same process, whose heap V8 has already grown and collects lazily.
   */
  peakRssMiB: number;
  /** Peak RSS of the process over every run of the cell, MiB. */
  peakRssAllRunsMiB: number;
  elapsedMs: number;
  /** The cell did not run: why. */
  skipped?: string;
  /** The cell was stopped at its budget: why (the phases hold what completed). */
  aborted?: string;
  environment: { node: string; cpus: number; platform: string };
}

function phaseStats(samples: OpSample[], firstRun: OpSample[]): PhaseStats {
  const pick = (f: (s: OpSample) => number): Summary => summary(samples.map(f));
  return {
    samples: samples.length,
    totalMs: pick((s) => s.totalMs),
    agentMs: pick((s) => s.agentMs),
    toolMs: pick((s) => s.toolMs),
    bytes: pick((s) => s.bytes),
    rules: pick((s) => s.rules),
    agentShare: summary(samples.map((s) => (s.totalMs > 0 ? s.agentMs / s.totalMs : 0))).median,
    peakRssMiB: firstRun.length ? Math.max(...firstRun.map((s) => s.maxRssKiB)) / 1024 : NaN,
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const started = performance.now();
  const progress = opts.progress ?? (() => {});
  if (opts.mode !== 'iptables' && opts.iptables) throw new Error(`--iptables: only in iptables mode, not ${opts.mode}`);
  let variant: IptablesVariant | null = null;
  let reason = 'nothing applied (--no-apply): the pure pipeline, no kernel tool';
  let estimatedSeconds: number | null = null;
  let command: string | null = null;
  if (opts.apply && opts.mode === 'iptables') {
    const choice = chooseVariant(opts.iptables, opts.services, opts.iptables ? 'legacy' : await hostVariant());
    variant = choice.variant;
    reason = choice.reason;
    command = `iptables-${variant}-restore`;
    estimatedSeconds = estimateCellSeconds(variant, opts.services, opts.endpointsPerService, opts.changes, opts.repeat);
  } else if (opts.apply) {
    command = 'nft';
    reason = 'nftables mode: one `nft -f -` transaction per sync, as the agent applies it';
  }
  const result: BenchResult = {
    bench: 'kube-proxy-ts',
    schema: 2,
    mode: opts.mode,
    apply: opts.apply,
    tool: { command, reason, estimatedSeconds },
    iptables: opts.mode === 'iptables' ? { variant, restore: command, reason, estimatedSeconds } : null,
    params: { services: opts.services, endpointsPerService: opts.endpointsPerService, changes: opts.changes, repeat: opts.repeat, seed: opts.seed, maxSeconds: opts.maxSeconds },
    cluster: null,
    phases: null,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    peakRssAllRunsMiB: process.resourceUsage().maxRSS / 1024,
    elapsedMs: 0,
    environment: { node: process.version, cpus: availableParallelism(), platform: `${process.platform}-${process.arch}` },
  };
  if (variant && estimatedSeconds !== null && estimatedSeconds > opts.maxSeconds) {
    result.skipped =
      `iptables-${variant}: the kernel tool alone would take about ${formatSeconds(estimatedSeconds)} for this cell ` +
      `(budget ${formatSeconds(opts.maxSeconds)}, --max-seconds); ${FLOOR_CITATION}`;
    result.elapsedMs = performance.now() - started;
    return result;
  }

  const deadline = started + opts.maxSeconds * 1000;
  const deadlineReason = `over the cell's budget of ${formatSeconds(opts.maxSeconds)} (--max-seconds)`;
  const prefix = opts.namespacePrefix ?? `kpt-bench-${process.pid}`;
  const all = emptySamples();
  let first: Record<PhaseId, OpSample[]> | undefined;
  let firstPeakKiB: number | undefined;
  const loads: number[] = [];
  for (let r = 0; r < opts.repeat && !result.aborted; r++) {
    const tag = `repeat ${r + 1}/${opts.repeat}`;
    const scenario = { spec: { services: opts.services, endpointsPerService: opts.endpointsPerService, seed: opts.seed }, changes: opts.changes };
    const onProgress = (phase: PhaseId, i: number, of: number): void => progress(`${tag}: ${PHASE_LABELS[phase]}${of > 1 ? ` ${i + 1}/${of}` : ''}`);
    let run;
    if (!opts.apply) {
      progress(`${tag}: generating ${opts.services} services`);
      const target: BenchTarget = opts.mode === 'iptables' ? iptablesTarget(recordingTool()) : nftablesTarget(recordingNft());
      run = await runScenario({ ...scenario, run: r, target, progress: onProgress });
    } else {
      const ns = `${prefix}-${r}`;
      progress(`${tag}: creating namespace ${ns}`);
      await createNamespace(ns);
      const tool = variant ? namespaceTool(ns, { variant, deadline, deadlineReason }) : undefined;
      try {
        const target = tool ? iptablesTarget(tool) : nftablesTarget(namespaceNft(ns, { deadline, deadlineReason }));
        run = await runScenario({ ...scenario, run: r, target, progress: onProgress });
      } finally {
        tool?.dispose();
        progress(`${tag}: deleting namespace ${ns}`);
        await deleteNamespace(ns);
      }
    }
    result.cluster ??= { ...run.cluster, loadMs: summary([]) };
    loads.push(run.loadMs);
    for (const p of PHASES) all[p].push(...run.samples[p]);
    first ??= run.samples;
    firstPeakKiB ??= process.resourceUsage().maxRSS;
    if (run.aborted) result.aborted = run.aborted;
  }
  if (result.cluster) result.cluster.loadMs = summary(loads);
  result.phases = Object.fromEntries(PHASES.map((p) => [p, phaseStats(all[p], first?.[p] ?? [])])) as Record<PhaseId, PhaseStats>;
  result.peakRssAllRunsMiB = process.resourceUsage().maxRSS / 1024;
  result.peakRssMiB = (firstPeakKiB ?? process.resourceUsage().maxRSS) / 1024;
  result.elapsedMs = performance.now() - started;
  return result;
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
