/**
 * One run of the bench scenario through the real agent pipeline
 * (ClusterStore → store.snapshot() → backend.sync → store.commit, the
 * backend an IptablesBackend or an NftablesBackend, configured as the agent
 * configures it):
 *
 * 1. load the synthetic cluster into the store (as sources would), then a
 *    cold full sync;
 * 2. K single-endpoint changes (a pod replaced), each a partial sync;
 * 3. K single services added, each a partial sync;
 * 4. K services removed, each a partial sync.
 *
 * Each operation is timed from the store mutation to the end of the sync.
 * The kernel tool's share is metered by the tool itself (every process it
 * ran, start to exit, less the time the agent spent rendering the input
 * the process was reading: an iptables full sync renders it as it is
 * written); the agent's share is the rest.
 */
import { parseArgs } from '../agent/options.js';
import { renderConfigFor } from '../agent/pipeline.js';
import { ClusterStore } from '../agent/model/store.js';
import type { RenderConfig } from '../backends/iptables/render.js';
import { IptablesBackend } from '../backends/iptables/backend.js';
import { NftablesBackend } from '../backends/nftables/backend.js';
import { nftConfigFrom } from '../backends/nftables/config.js';
import { realApplier } from '../backends/nftables/nft/applier.js';
import type { Backend } from '../backends/types.js';
import type { MeteredNft, MeteredTool } from './bench-tools.js';
import { isDeadline } from './bench-tools.js';
import { BENCH_CLUSTER_CIDR, BENCH_NODE_NAME, SyntheticCluster, summarize } from './synthetic-cluster.js';
import type { ClusterSummary, GeneratedService, SyntheticSpec } from './synthetic-cluster.js';
import { seededRandom } from './random.js';
import { collectGarbage } from '../agent/heap.js';

export const PHASES = ['full', 'endpointChange', 'serviceAdd', 'serviceRemove'] as const;
export type PhaseId = (typeof PHASES)[number];

export const PHASE_LABELS: Record<PhaseId, string> = {
  full: 'cold full sync',
  endpointChange: 'endpoint change',
  serviceAdd: 'service added',
  serviceRemove: 'service removed',
};

export interface OpSample {
  totalMs: number;
  toolMs: number;
  agentMs: number;
  /** Bytes handed to the kernel tool. */
  bytes: number;
  /** Rules in that input. */
  rules: number;
  /** The process's peak RSS so far, KiB. */
  maxRssKiB: number;
}

export interface ScenarioResult {
  cluster: ClusterSummary;
  /** Loading the generated objects into the store (what sources do), ms. */
  loadMs: number;
  samples: Record<PhaseId, OpSample[]>;
  /** Set when a deadline stopped the run: why, and in which phase. */
  aborted?: string;
}

/** The proxy modes the bench runs. */
export const BENCH_MODES = ['iptables', 'nftables'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** What a scenario syncs through: a backend, and the meter of the kernel tool it drives. */
export interface BenchTarget {
  backend: Backend;
  /** Milliseconds spent in the kernel tool since the last call. */
  takeMs(): number;
}

/** iptables mode: the agent's IptablesBackend over a (metered) iptables tool. */
export function iptablesTarget(tool: MeteredTool): BenchTarget {
  return { backend: new IptablesBackend(tool, benchRenderConfig()), takeMs: () => tool.takeMs() };
}

/** nftables mode: the agent's NftablesBackend over a (metered) nft, configured as the agent does (nftConfigFrom). */
export function nftablesTarget(nft: MeteredNft): BenchTarget {
  return { backend: new NftablesBackend(realApplier(nft), nftConfigFrom(benchRenderConfig())), takeMs: () => nft.takeMs() };
}

export interface ScenarioOptions {
  spec: SyntheticSpec;
  changes: number;
  /**
   * Which repeat this is (default 0). The cluster is the same in every repeat;
   * the services changed and removed are picked by an RNG seeded from the seed
   * and this, so R repeats of K changes are R x K different cases, not K cases
   * measured R times.
   */
  run?: number;
  /** A fresh target per run (a backend remembers what it wrote). */
  target: BenchTarget;
  /** Called before each operation. */
  progress?: (phase: PhaseId, index: number, of: number) => void;
}

/** The render configuration the agent itself would use for this cluster (its defaults, the bench's cluster CIDR and node name). */
export function benchRenderConfig(): RenderConfig {
  const parsed = parseArgs(['--cluster-cidr', BENCH_CLUSTER_CIDR, '--hostname-override', BENCH_NODE_NAME]);
  if (parsed.kind !== 'options') throw new Error(`bench: the agent refused its own options: ${parsed.output}`);
  return renderConfigFor(parsed.options, 'IPv4');
}

export function emptySamples(): Record<PhaseId, OpSample[]> {
  return { full: [], endpointChange: [], serviceAdd: [], serviceRemove: [] };
}

export async function runScenario(opts: ScenarioOptions): Promise<ScenarioResult> {
  const gen = new SyntheticCluster(opts.spec);
  const initial = gen.initial();
  const picks = seededRandom(Math.imul(opts.spec.seed ^ 0x5bd1e995, 0x9e3779b1) + (opts.run ?? 0));
  const cluster = summarize(initial, gen.nodes.length, gen.node.name);
  const store = new ClusterStore(gen.node.name, 'IPv4');
  const loadStart = performance.now();
  store.setNode(gen.node);
  for (const g of initial) {
    store.upsertService(g.service);
    for (const s of g.slices) store.upsertSlice(s);
  }
  const loadMs = performance.now() - loadStart;
  const { backend } = opts.target;
  const samples = emptySamples();

  /** Live services: the initial ones (removable) and the added ones. */
  const live: GeneratedService[] = [...initial];
  const removable: GeneratedService[] = [...initial];

  const op = async (phase: PhaseId, mutate: () => void, full: boolean): Promise<void> => {
    opts.target.takeMs();
    const start = performance.now();
    mutate();
    const { snapshot, changes } = store.snapshot();
    const r = await backend.sync(snapshot, changes, { full });
    store.commit(changes);
    const totalMs = performance.now() - start;
    const toolMs = opts.target.takeMs();
    samples[phase].push({ totalMs, toolMs, agentMs: Math.max(0, totalMs - toolMs), bytes: r.bytes, rules: r.rules, maxRssKiB: process.resourceUsage().maxRSS });
  };

  // As the agent does once its initial lists are in the model (agent.ts): what they came from is garbage.
  collectGarbage();
  let phase: PhaseId = 'full';
  try {
    opts.progress?.(phase, 0, 1);
    await op(phase, () => {}, true);
    // As the agent does after a full sync (agent.ts): its garbage is collected before the partial syncs.
    collectGarbage();

    phase = 'endpointChange';
    // A service whose internalTrafficPolicy is Local only has rules for this node's endpoints: a change elsewhere changes nothing here.
    const changeable = live.filter((x) => x.service.internalTrafficPolicy !== 'Local');
    for (let i = 0; i < opts.changes && changeable.length > 0; i++) {
      opts.progress?.(phase, i, opts.changes);
      const g = changeable[picks.int(changeable.length)]!;
      const si = picks.int(g.slices.length);
      await op(phase, () => {
        g.slices[si] = gen.replaceEndpoint(g.slices[si]!);
        store.upsertSlice(g.slices[si]!);
      }, false);
    }

    phase = 'serviceAdd';
    for (let i = 0; i < opts.changes; i++) {
      opts.progress?.(phase, i, opts.changes);
      const g = gen.newService();
      live.push(g);
      await op(phase, () => {
        store.upsertService(g.service);
        for (const s of g.slices) store.upsertSlice(s);
      }, false);
    }

    phase = 'serviceRemove';
    for (let i = 0; i < opts.changes && removable.length > 0; i++) {
      opts.progress?.(phase, i, opts.changes);
      const [g] = removable.splice(picks.int(removable.length), 1) as [GeneratedService];
      live.splice(live.indexOf(g), 1);
      await op(phase, () => {
        store.deleteService(g.service.namespace, g.service.name);
        for (const s of g.slices) store.deleteSlice(s.namespace, s.name);
      }, false);
    }
  } catch (err) {
    if (!isDeadline(err)) throw err;
    return { cluster, loadMs, samples, aborted: `${(err as Error).message} (during ${PHASE_LABELS[phase]})` };
  }
  return { cluster, loadMs, samples };
}
