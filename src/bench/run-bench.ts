/**
 * Runs one bench cell: R repeats of the scenario, each in a fresh network
 * namespace (or with nothing applied, --no-apply), and summarises them.
 * A cell whose estimated kernel time (from the measured floor) exceeds its
 * budget is skipped before it starts; a cell that overruns its budget anyway
 * is stopped (the running tool is killed) and reported as aborted.
 */
import { availableParallelism } from 'node:os';
import { createNamespace, deleteNamespace, hostVariant, namespaceTool, recordingTool } from './bench-tools.js';
import { chooseVariant, estimateCellSeconds, FLOOR_CITATION } from './kernel-floor.js';
import type { IptablesVariant } from './kernel-floor.js';
import { emptySamples, PHASE_LABELS, PHASES, runScenario } from './scenario.js';
import type { OpSample, PhaseId } from './scenario.js';
import { summary } from './stats.js';
import type { Summary } from './stats.js';
import type { ClusterSummary } from './synthetic-cluster.js';

export interface BenchOptions {
  mode: 'iptables';
  services: number;
  endpointsPerService: number;
  changes: number;
  repeat: number;
  seed: number;
  /** False: --no-apply, the pure pipeline only. */
  apply: boolean;
  /** --iptables; undefined: chosen (see chooseVariant). */
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
  /** Highest peak RSS seen by the end of an operation of this phase, MiB. */
  peakRssMiB: number;
}

export interface BenchResult {
  bench: 'kube-proxy-ts';
  schema: 1;
  mode: 'iptables';
  apply: boolean;
  iptables: {
    /** null with --no-apply. */
    variant: IptablesVariant | null;
    restore: string | null;
    reason: string;
    /** Estimated kernel-tool seconds for the cell, from the measured floor (null with --no-apply). */
    estimatedSeconds: number | null;
  };
  params: { services: number; endpointsPerService: number; changes: number; repeat: number; seed: number; maxSeconds: number };
  cluster: (ClusterSummary & { loadMs: Summary }) | null;
  phases: Record<PhaseId, PhaseStats> | null;
  /** Peak RSS of the process over the whole cell, MiB. */
  peakRssMiB: number;
  elapsedMs: number;
  /** The cell did not run: why. */
  skipped?: string;
  /** The cell was stopped at its budget: why (the phases hold what completed). */
  aborted?: string;
  environment: { node: string; cpus: number; platform: string };
}

function phaseStats(samples: OpSample[]): PhaseStats {
  const pick = (f: (s: OpSample) => number): Summary => summary(samples.map(f));
  return {
    samples: samples.length,
    totalMs: pick((s) => s.totalMs),
    agentMs: pick((s) => s.agentMs),
    toolMs: pick((s) => s.toolMs),
    bytes: pick((s) => s.bytes),
    rules: pick((s) => s.rules),
    agentShare: summary(samples.map((s) => (s.totalMs > 0 ? s.agentMs / s.totalMs : 0))).median,
    peakRssMiB: samples.length ? Math.max(...samples.map((s) => s.maxRssKiB)) / 1024 : NaN,
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const started = performance.now();
  const progress = opts.progress ?? (() => {});
  let variant: IptablesVariant | null = null;
  let reason = 'nothing applied (--no-apply): the pure pipeline, no kernel tool';
  let estimatedSeconds: number | null = null;
  if (opts.apply) {
    const choice = chooseVariant(opts.iptables, opts.services, opts.iptables ? 'legacy' : await hostVariant());
    variant = choice.variant;
    reason = choice.reason;
    estimatedSeconds = estimateCellSeconds(variant, opts.services, opts.endpointsPerService, opts.changes, opts.repeat);
  }
  const result: BenchResult = {
    bench: 'kube-proxy-ts',
    schema: 1,
    mode: opts.mode,
    apply: opts.apply,
    iptables: { variant, restore: variant ? `iptables-${variant}-restore` : null, reason, estimatedSeconds },
    params: { services: opts.services, endpointsPerService: opts.endpointsPerService, changes: opts.changes, repeat: opts.repeat, seed: opts.seed, maxSeconds: opts.maxSeconds },
    cluster: null,
    phases: null,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
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
  const prefix = opts.namespacePrefix ?? `kpt-bench-${process.pid}`;
  const all = emptySamples();
  const loads: number[] = [];
  for (let r = 0; r < opts.repeat && !result.aborted; r++) {
    const tag = `repeat ${r + 1}/${opts.repeat}`;
    const scenario = { spec: { services: opts.services, endpointsPerService: opts.endpointsPerService, seed: opts.seed }, changes: opts.changes };
    const onProgress = (phase: PhaseId, i: number, of: number): void => progress(`${tag}: ${PHASE_LABELS[phase]}${of > 1 ? ` ${i + 1}/${of}` : ''}`);
    let run;
    if (!variant) {
      progress(`${tag}: generating ${opts.services} services`);
      run = await runScenario({ ...scenario, tool: recordingTool(), progress: onProgress });
    } else {
      const ns = `${prefix}-${r}`;
      progress(`${tag}: creating namespace ${ns}`);
      await createNamespace(ns);
      const tool = namespaceTool(ns, { variant, deadline, deadlineReason: `over the cell's budget of ${formatSeconds(opts.maxSeconds)} (--max-seconds)` });
      try {
        run = await runScenario({ ...scenario, tool, progress: onProgress });
      } finally {
        tool.dispose();
        progress(`${tag}: deleting namespace ${ns}`);
        await deleteNamespace(ns);
      }
    }
    result.cluster ??= { ...run.cluster, loadMs: summary([]) };
    loads.push(run.loadMs);
    for (const p of PHASES) all[p].push(...run.samples[p]);
    if (run.aborted) result.aborted = run.aborted;
  }
  if (result.cluster) result.cluster.loadMs = summary(loads);
  result.phases = Object.fromEntries(PHASES.map((p) => [p, phaseStats(all[p])])) as Record<PhaseId, PhaseStats>;
  result.peakRssMiB = process.resourceUsage().maxRSS / 1024;
  result.elapsedMs = performance.now() - started;
  return result;
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
