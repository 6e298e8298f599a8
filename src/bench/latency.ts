/**
 * `kube-proxy-ts bench --latency`: network programming latency of the WHOLE
 * agent, from an API change to its rules being in the kernel, under steady
 * EndpointSlice churn.
 *
 *   bench process (root namespace)                 throwaway network namespace <ns>
 *   +--------------------------------------+       +-----------------------------------------+
 *   | FakeApiServer on <tmp>/api.sock      |<------| unix-bridge 127.0.0.1:6443 -> api.sock  |
 *   |   N services × M endpoints, 1 Node   | unix  |                                         |
 *   | churn: R slice updates a second,     | socket| agent: dist/src/agent/main.js --v=4     |
 *   |   each annotated last-change-trigger-|       |   --kubeconfig (server 127.0.0.1:6443)  |
 *   |   time = the moment it is sent       |       |   --proxy-mode=iptables|nftables        |
 *   |                                      |       |   (iptables-<variant> via PATH, or nft) |
 *   | reads the agent's stderr:            |<------|   logs "network programming latency"    |
 *   |   latency lines, sync lines          | pipe  |   /metrics on 127.0.0.1:10249           |
 *   +--------------------------------------+       +-----------------------------------------+
 *
 * Steps: generate the synthetic cluster (seeded), load it into the fake API
 * server, create the namespace (`ip netns add`, loopback up, nothing else),
 * start the bridge and the built agent in it, wait for the first sync of
 * every family, send R×S updates at a fixed schedule (each replaces one
 * endpoint of one slice, as when a pod is rescheduled), wait until the agent
 * has logged a latency for every update (or a drain timeout), read
 * kubeproxy_network_programming_duration_seconds_count from the agent's
 * /metrics (from inside the namespace) and VmHWM from /proc/<pid>/status,
 * count the IPv4 rules the kernel holds with the mode's own tool
 * (`iptables-<variant>-save`, or `nft -j list table ip kube-proxy`), then
 * stop everything.
 *
 * When an update counts as programmed is the same in both modes: the agent's
 * sync loop (src/agent/agent.ts) logs one "network programming latency" line
 * per trigger time and observes kubeproxy_network_programming_duration_seconds
 * after the backend's sync returned, whichever backend it is.
 *
 * iptables mode, the variant: the agent picks the iptables holding more
 * rules, or on a tie (a fresh namespace) the `iptables` on its PATH; the
 * bench puts a directory first on the agent's PATH whose
 * iptables/ip6tables(-save/-restore) are symlinks to xtables-<variant>-multi.
 * nftables mode needs no such choice: the agent runs `nft` from its PATH.
 * XTABLES_LOCKFILE is private in both modes (nftables mode still removes
 * iptables mode's leftovers at start), so iptables-legacy never waits for
 * (or blocks) anyone else's iptables.
 *
 * Everything created is torn down on success, on failure and (through
 * cleanupLatencySync, from the command's signal handler) on SIGINT/SIGTERM:
 * the agent and the bridge (by pid), the namespace, the socket and the
 * temporary directory. Never touches the root network namespace.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync, appendFileSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { EndpointSlice } from '../agent/model/types.js';
import { parseDuration } from '../agent/util/duration.js';
import { FakeApiServer } from '../testing/fake-apiserver.js';
import { TABLE as NFT_TABLE } from '../backends/nftables/names.js';
import { createNamespace, deleteLiveNamespacesSync, deleteNamespace, hostVariant, namespaceExists } from './bench-tools.js';
import { chooseVariant, estimatedLines, estimateFullSeconds, FLOOR_CITATION } from './kernel-floor.js';
import type { IptablesVariant } from './kernel-floor.js';
import { apiNodeOf, apiServiceOf, apiSliceOf } from './latency-objects.js';
import { iptablesSaveCounts, latencySummary, metricSample, nftTableCounts, parseFamiliesLine, parseLatencyLine, parseSyncLine, procStatusKiB } from './latency-stats.js';
import type { KernelTableCount, LatencySummary, LogFamily, SyncLine } from './latency-stats.js';
import type { BenchMode } from './scenario.js';
import { summary } from './stats.js';
import type { Summary } from './stats.js';
import { BENCH_CLUSTER_CIDR, BENCH_NODE_NAME, summarize, SyntheticCluster } from './synthetic-cluster.js';
import type { ClusterSummary } from './synthetic-cluster.js';

export interface LatencyOptions {
  services: number;
  endpointsPerService: number;
  /** EndpointSlice updates per second. */
  rate: number;
  /** Seconds of churn. */
  durationSeconds: number;
  seed: number;
  /** The agent's --proxy-mode. */
  mode: BenchMode;
  /** --iptables (iptables mode only); undefined: chosen (see chooseVariant). */
  iptables?: IptablesVariant;
  /** The agent's --iptables-min-sync-period (Go duration; it applies to both modes). */
  minSyncPeriod: string;
  /** Budget for the agent's start (until its first sync), seconds; also the skip threshold. */
  maxSeconds: number;
  /** The network namespace to create (default kpt-latency-<pid>); must not exist. */
  namespace?: string;
  /** Also write every line the agent logs to this file. */
  agentLog?: string;
  /** Progress text (one short line). */
  progress?: (line: string) => void;
}

export const AGENT_METRICS_ADDRESS = '127.0.0.1:10249';
const AGENT_HEALTHZ_ADDRESS = '127.0.0.1:10256';
const BRIDGE_ADDRESS = '127.0.0.1:6443';

/** The IPv4 rules the kernel held at the end, read inside the namespace with the mode's own tool. */
export interface KernelCount {
  /** The command that read them: `iptables-<variant>-save` or `nft -j list table ip kube-proxy`. */
  command: string;
  /** The tables holding the agent's rules (see KernelTableCount). */
  tables: KernelTableCount[];
  /** Totals over the tables. */
  chains: number;
  rules: number;
  /** nftables: sets and maps, and their elements; null in iptables mode. */
  sets: number | null;
  elements: number | null;
}

export interface LatencyResult {
  bench: 'kube-proxy-ts';
  /** 2: `mode` (nftables too), `tool`, `iptables` null outside iptables mode, `agent.kernel`, `agent.rulesInVariant` null outside iptables mode. */
  schema: 2;
  kind: 'latency';
  /** The agent's --proxy-mode. */
  mode: BenchMode;
  params: {
    services: number;
    endpointsPerService: number;
    rate: number;
    durationSeconds: number;
    seed: number;
    minSyncPeriod: string;
    maxSeconds: number;
  };
  /** The kernel tool the agent's syncs go through, whatever the mode. */
  tool: {
    /** `iptables-legacy-restore`, `iptables-nft-restore` or `nft`. */
    command: string;
    reason: string;
  };
  /** iptables mode only (null in nftables mode). */
  iptables: {
    variant: IptablesVariant;
    restore: string;
    reason: string;
    /** The agent's first full sync, from the measured floor (kernel-floor.ts); over --max-seconds: skipped. */
    estimatedFullSyncSeconds: number;
  } | null;
  namespace: string;
  cluster: ClusterSummary | null;
  agent: {
    /** The agent's command line (inside the namespace). */
    args: string[];
    /** Families the agent syncs (IPv6 too when ip6tables works in the namespace). */
    families: LogFamily[];
    /** From the agent's start to its first sync of every family, ms. */
    firstSyncMs: number;
    /** VmHWM of the agent process at the end, MiB. */
    peakRssMiB: number | null;
    /** VmRSS at the end, MiB. */
    rssMiB: number | null;
    /** iptables mode: whether the chosen variant's nat table held KUBE-SERVICES at the end; null in nftables mode, or before the end. */
    rulesInVariant: boolean | null;
    /** What the kernel held at the end; null before the end, or when it could not be read. */
    kernel: KernelCount | null;
  } | null;
  churn: {
    /** Updates sent. */
    sent: number;
    /** From the first send to the last, s. */
    seconds: number;
    /** Updates per second actually achieved. */
    achievedRate: number;
    /** From the last send until every latency was logged (or the drain timed out), ms. */
    drainMs: number;
  } | null;
  /** Network programming latency of the IPv4 rules (the slices are IPv4), ms. */
  latencyMs: LatencySummary;
  /** Latency lines the agent logged for its other families (it logs every change's trigger time per family it syncs). */
  otherFamilies: Partial<Record<LogFamily, LatencySummary>>;
  /** Updates sent with no IPv4 latency logged by the end of the drain. */
  missing: number;
  metric: {
    /** kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"}; null when unreadable. */
    count: number | null;
    /** The metric's count equals the number of IPv4 latency lines. */
    agrees: boolean;
    syncCount: number | null;
  };
  /** IPv4 syncs from the start of the churn to the end of the drain; toolMs: the part in the kernel tool (`tool.command`). */
  syncs: { count: number; full: number; partial: number; syncMs: Summary; toolMs: Summary };
  elapsedMs: number;
  skipped?: string;
  environment: { node: string; cpus: number; platform: string };
}

// ---------------------------------------------------------------------------
// Live resources, so a signal can tear them down synchronously.

const livePids = new Set<number>();
const liveDirs = new Set<string>();

/** Kills every process this module started and has not reaped, deletes its namespaces and temporary directories. */
export function cleanupLatencySync(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
  deleteLiveNamespacesSync();
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}

// ---------------------------------------------------------------------------
// Locating the built agent and the tools.

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root, from src/bench (sources) or dist/src/bench (built). */
export function benchRepoRoot(): string {
  for (const up of ['../..', '../../..']) {
    const root = resolve(here, up);
    if (existsSync(join(root, 'package.json')) && existsSync(join(root, 'src'))) return root;
  }
  throw new Error(`cannot find the repository root from ${here}`);
}

function built(rel: string): string {
  const p = join(benchRepoRoot(), rel);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build first (the latency bench runs the built agent)`);
  return p;
}

function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** A directory whose iptables/ip6tables tools are the chosen variant's. */
function variantBinDir(dir: string, variant: IptablesVariant): string {
  const multi = which(`iptables-${variant}`);
  if (!multi) throw new Error(`iptables-${variant} is not installed`);
  const target = realpathSync(multi);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const name of ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore']) symlinkSync(target, join(bin, name));
  return bin;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // NODE_OPTIONS: test runners put loaders there; the agent and the bridge need none.
  const { NODE_OPTIONS: _drop, ...env } = process.env;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------
// A child process in the namespace whose stderr (or stdout) is read by lines.

interface NsProcess {
  proc: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  exitCode(): number | null | undefined;
  /** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when gone. */
  stop(graceMs?: number): Promise<void>;
}

function startInNamespace(ns: string, argv: string[], env: NodeJS.ProcessEnv, onLine: (line: string, stream: 'stdout' | 'stderr') => void, stdin: 'pipe' | 'ignore'): NsProcess {
  // `ip netns exec` enters the namespace and execs the command (no fork): the child's pid is the command's.
  const proc = spawn('ip', ['netns', 'exec', ns, ...argv], { env, stdio: [stdin, 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`cannot start ${argv.join(' ')} in ${ns}`);
  const pid = proc.pid;
  livePids.add(pid);
  let code: number | null | undefined;
  const exited = new Promise<number | null>((res) => {
    proc.on('exit', (c, sig) => {
      code = c ?? (sig ? 128 : null);
      livePids.delete(pid);
      res(code);
    });
    proc.on('error', () => {
      code = -1;
      livePids.delete(pid);
      res(-1);
    });
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    proc[stream]!.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) onLine(l, stream);
    });
  }
  return {
    proc,
    pid,
    exited,
    exitCode: () => code,
    async stop(graceMs = 5000) {
      if (code !== undefined) return;
      proc.stdin?.end();
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The agent's node process: `pid` itself once `ip netns exec` has exec'd it, else a child of it. */
function nodePid(pid: number): number {
  const isNode = (p: number): boolean => {
    try {
      return readlinkSync(`/proc/${p}/exe`) === realpathSync(process.execPath);
    } catch {
      return false;
    }
  };
  if (isNode(pid)) return pid;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && isNode(Number(d))) return Number(d);
    } catch {
      // gone
    }
  }
  return pid;
}

/** GET from inside the namespace (a node one-liner run there). */
async function getInNamespace(ns: string, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => { if (!r.ok) throw new Error('HTTP ' + r.status); process.stdout.write(await r.text()); }).catch((e) => { console.error(String(e)); process.exit(1); })`;
  const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { env: childEnv(), extendEnv: false, reject: false, timeout: 15_000 });
  if (r.exitCode !== 0) throw new Error(`GET ${url} in ${ns}: ${String(r.stderr).trim() || r.shortMessage}`);
  return String(r.stdout);
}

/** What the kernel held, as LatencyResult['agent'] reports it; `error` when it could not be read. */
interface KernelReadout {
  kernel: KernelCount | null;
  rulesInVariant: boolean | null;
  error?: string;
}

function kernelCount(command: string, tables: KernelTableCount[]): KernelCount {
  const sum = (f: (t: KernelTableCount) => number | null): number => tables.reduce((acc, t) => acc + (f(t) ?? 0), 0);
  const nft = command.startsWith('nft');
  return { command, tables, chains: sum((t) => t.chains), rules: sum((t) => t.rules), sets: nft ? sum((t) => t.sets) : null, elements: nft ? sum((t) => t.elements) : null };
}

/** iptables mode: the chosen variant's IPv4 tables (every table, so filter's KUBE-* rules count too). */
async function readIptablesKernel(ns: string, variant: IptablesVariant, lockFile: string): Promise<KernelReadout> {
  const command = `iptables-${variant}-save`;
  const saved = await execa('ip', ['netns', 'exec', ns, command], { env: { XTABLES_LOCKFILE: lockFile }, reject: false, maxBuffer: 1024 * 1024 * 1024 });
  if (saved.exitCode !== 0) return { kernel: null, rulesInVariant: false, error: `${command}: ${String(saved.stderr).trim() || saved.shortMessage}` };
  const tables = iptablesSaveCounts(String(saved.stdout));
  return {
    kernel: kernelCount(command, tables.map(({ servicesChain: _, ...t }) => t)),
    rulesInVariant: tables.some((t) => t.table === 'nat' && t.servicesChain),
  };
}

/** nftables mode: the agent's IPv4 table, as nft lists it (rulesInVariant is iptables mode's: null). */
async function readNftKernel(ns: string): Promise<KernelReadout> {
  const argv = ['nft', '-j', 'list', 'table', 'ip', NFT_TABLE];
  const command = argv.join(' ');
  const listed = await execa('ip', ['netns', 'exec', ns, ...argv], { reject: false, stdin: 'ignore', maxBuffer: 1024 * 1024 * 1024 });
  // No such table: read fine, and nothing of the agent's is there.
  if (listed.exitCode !== 0 && /No such file or directory/.test(String(listed.stderr))) return { kernel: kernelCount(command, []), rulesInVariant: null };
  if (listed.exitCode !== 0) return { kernel: null, rulesInVariant: null, error: `${command}: ${String(listed.stderr).trim() || listed.shortMessage}` };
  try {
    const table = nftTableCounts(JSON.parse(String(listed.stdout)), 'ip', NFT_TABLE);
    return { kernel: kernelCount(command, table ? [table] : []), rulesInVariant: null };
  } catch (err) {
    return { kernel: null, rulesInVariant: null, error: `${command}: ${(err as Error).message}` };
  }
}

function kubeconfigText(server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: { server: "${server}", insecure-skip-tls-verify: true }
users:
- name: kube-proxy
  user: {}
contexts:
- name: default
  context: { cluster: bench, user: kube-proxy }
current-context: default
`;
}

// ---------------------------------------------------------------------------

/** The mode's kernel tool and, in iptables mode, the variant with its floor estimate. */
interface ModeChoice {
  tool: LatencyResult['tool'];
  iptables: LatencyResult['iptables'];
}

async function chooseMode(opts: LatencyOptions): Promise<ModeChoice> {
  if (opts.mode === 'nftables') {
    // The command refuses this as a usage error; a caller of runLatencyBench gets the same answer.
    if (opts.iptables) throw new Error(`--iptables ${opts.iptables} is for --mode iptables; --mode nftables uses nft`);
    // Checked here, before anything is created: without it the agent would only fail at its start, inside the namespace.
    const nft = await execa('nft', ['--version'], { reject: false, stdin: 'ignore' });
    if (nft.exitCode !== 0) {
      const why = /ENOENT/.test(nft.shortMessage ?? '') ? 'it is not installed (no nft on PATH)' : `\`nft --version\` failed: ${String(nft.stderr).trim() || nft.shortMessage}`;
      throw new Error(`--mode nftables needs nft (the agent runs it to program its table): ${why}`);
    }
    return { tool: { command: 'nft', reason: `--proxy-mode=nftables: one \`nft -f -\` transaction per sync (${String(nft.stdout).trim()})` }, iptables: null };
  }
  const choice = chooseVariant(opts.iptables, opts.services, opts.iptables ? 'legacy' : await hostVariant());
  const restore = `iptables-${choice.variant}-restore`;
  return {
    tool: { command: restore, reason: choice.reason },
    iptables: {
      variant: choice.variant,
      restore,
      reason: choice.reason,
      estimatedFullSyncSeconds: estimateFullSeconds(choice.variant, estimatedLines(opts.services, opts.endpointsPerService)),
    },
  };
}

/** How a run is named in tables and progress: `iptables-<variant>` or `nftables`. */
export function latencyLabel(r: Pick<LatencyResult, 'mode' | 'iptables'>): string {
  return r.iptables ? `iptables-${r.iptables.variant}` : r.mode;
}

function emptyResult(opts: LatencyOptions, choice: ModeChoice, namespace: string): LatencyResult {
  return {
    bench: 'kube-proxy-ts',
    schema: 2,
    kind: 'latency',
    mode: opts.mode,
    params: {
      services: opts.services,
      endpointsPerService: opts.endpointsPerService,
      rate: opts.rate,
      durationSeconds: opts.durationSeconds,
      seed: opts.seed,
      minSyncPeriod: opts.minSyncPeriod,
      maxSeconds: opts.maxSeconds,
    },
    tool: choice.tool,
    iptables: choice.iptables,
    namespace,
    cluster: null,
    agent: null,
    churn: null,
    latencyMs: latencySummary([]),
    otherFamilies: {},
    missing: 0,
    metric: { count: null, agrees: false, syncCount: null },
    syncs: { count: 0, full: 0, partial: 0, syncMs: summary([]), toolMs: summary([]) },
    elapsedMs: 0,
    environment: { node: process.version, cpus: availableParallelism(), platform: `${process.platform}-${process.arch}` },
  };
}

export async function runLatencyBench(opts: LatencyOptions): Promise<LatencyResult> {
  const started = performance.now();
  const progress = opts.progress ?? (() => {});
  const minSyncMs = parseDuration(opts.minSyncPeriod);
  if (minSyncMs === undefined) throw new Error(`--iptables-min-sync-period: ${JSON.stringify(opts.minSyncPeriod)} is not a duration (e.g. 1s, 500ms)`);
  const choice = await chooseMode(opts);
  const ns = opts.namespace ?? `kpt-latency-${process.pid}`;
  const result = emptyResult(opts, choice, ns);
  const label = latencyLabel(result);
  // Only iptables has a measured floor (kernel-floor.ts); nftables mode just has --max-seconds to reach its first sync.
  if (choice.iptables && choice.iptables.estimatedFullSyncSeconds > opts.maxSeconds) {
    result.skipped =
      `${label}: the agent's first full sync alone would take about ${Math.round(choice.iptables.estimatedFullSyncSeconds)} s ` +
      `(budget ${opts.maxSeconds} s, --max-seconds); ${FLOOR_CITATION}`;
    result.elapsedMs = performance.now() - started;
    return result;
  }
  const agentMain = built('dist/src/agent/main.js');
  const bridgeMain = built('dist/scripts/netns/unix-bridge.js');
  if (await namespaceExists(ns)) throw new Error(`network namespace ${ns} already exists; choose another with --namespace`);

  // The cluster, as API objects, in the fake API server.
  progress(`generating ${opts.services} services × ${opts.endpointsPerService} endpoints`);
  const cluster = new SyntheticCluster({ services: opts.services, endpointsPerService: opts.endpointsPerService, seed: opts.seed });
  const generated = cluster.initial();
  result.cluster = summarize(generated, cluster.nodes.length, BENCH_NODE_NAME);
  const slices: EndpointSlice[][] = generated.map((g) => g.slices);

  const dir = mkdtempSync(join(tmpdir(), 'kpt-latency-'));
  liveDirs.add(dir);
  const socketPath = join(dir, 'api.sock');
  let api: FakeApiServer | undefined;
  let bridge: NsProcess | undefined;
  let agent: NsProcess | undefined;
  let nsCreated = false;
  const tail: string[] = [];
  const logTail = (): string => tail.slice(-40).join('\n');
  try {
    // maxHistory: the initial load and the whole churn stay replayable, so a re-watch never needs a re-list.
    const events = 1 + opts.services * 2 + result.cluster.slices + Math.ceil(opts.rate * opts.durationSeconds) + 100;
    api = await FakeApiServer.start({ socketPath, tcp: false, maxHistory: Math.max(1000, events), maxRequestLog: 1000 });
    api.create('nodes', apiNodeOf(cluster.node));
    for (const g of generated) {
      api.create('services', apiServiceOf(g.service));
      for (const s of g.slices) api.create('endpointslices', apiSliceOf(s));
    }
    writeFileSync(join(dir, 'kubeconfig'), kubeconfigText(`http://${BRIDGE_ADDRESS}`));
    const bin = choice.iptables ? variantBinDir(dir, choice.iptables.variant) : undefined;

    progress(`creating network namespace ${ns}`);
    await createNamespace(ns);
    nsCreated = true;
    const lo = await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { reject: false });
    if (lo.exitCode !== 0) throw new Error(`cannot bring up lo in ${ns}: ${String(lo.stderr).trim()}`);

    // The bridge: 127.0.0.1:6443 in the namespace → the fake's unix socket. It exits when its stdin closes.
    let bridgeUp: () => void = () => undefined;
    const bridgeListening = new Promise<void>((res) => (bridgeUp = res));
    bridge = startInNamespace(ns, [process.execPath, bridgeMain, BRIDGE_ADDRESS, socketPath], childEnv(), (l) => l.includes('listening') && bridgeUp(), 'pipe');
    await Promise.race([
      bridgeListening,
      bridge.exited.then((c) => Promise.reject(new Error(`the unix bridge exited (${c}) before listening`))),
      sleep(10_000).then(() => Promise.reject(new Error('the unix bridge did not start within 10 s'))),
    ]);

    // The agent.
    const args = [
      '--v=4',
      `--proxy-mode=${opts.mode}`,
      `--kubeconfig=${join(dir, 'kubeconfig')}`,
      `--hostname-override=${BENCH_NODE_NAME}`,
      `--cluster-cidr=${BENCH_CLUSTER_CIDR}`,
      `--iptables-min-sync-period=${opts.minSyncPeriod}`,
      `--metrics-bind-address=${AGENT_METRICS_ADDRESS}`,
      `--healthz-bind-address=${AGENT_HEALTHZ_ADDRESS}`,
    ];
    result.agent = { args: [agentMain, ...args], families: [], firstSyncMs: NaN, peakRssMiB: null, rssMiB: null, rulesInVariant: null, kernel: null };
    const latencies: Record<LogFamily, number[]> = { IPv4: [], IPv6: [] };
    const syncLines: { at: number; sync: SyncLine }[] = [];
    let families: LogFamily[] | undefined;
    let wake: () => void = () => undefined;
    if (opts.agentLog) writeFileSync(opts.agentLog, '');
    const onAgentLine = (line: string): void => {
      if (opts.agentLog) appendFileSync(opts.agentLog, `${line}\n`);
      const lat = parseLatencyLine(line);
      if (lat) latencies[lat.family].push(lat.ms);
      else {
        tail.push(line);
        if (tail.length > 200) tail.shift();
        const s = parseSyncLine(line);
        if (s) syncLines.push({ at: performance.now(), sync: s });
        families ??= parseFamiliesLine(line);
      }
      wake();
    };
    /** Resolves when `cond` holds, rejects when the agent exits or `ms` pass. */
    const until = async (cond: () => boolean, ms: number, what: string): Promise<boolean> => {
      const deadline = performance.now() + ms;
      while (!cond()) {
        const code = agent!.exitCode();
        if (code !== undefined) throw new Error(`the agent exited (status ${code}) while ${what}; its log ends:\n${logTail()}`);
        const left = deadline - performance.now();
        if (left <= 0) return false;
        await new Promise<void>((res) => {
          const t = setTimeout(res, Math.min(left, 200));
          wake = () => {
            clearTimeout(t);
            res();
          };
        });
      }
      return true;
    };

    progress(`starting the agent (${label}) in ${ns}`);
    const agentStarted = performance.now();
    const lockFile = join(dir, 'xtables.lock');
    const agentEnv = childEnv({ ...(bin ? { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } : {}), XTABLES_LOCKFILE: lockFile });
    agent = startInNamespace(ns, [process.execPath, agentMain, ...args], agentEnv, onAgentLine, 'ignore');
    const pid = nodePid(agent.pid);
    livePids.add(pid);
    agent.exited.then(() => livePids.delete(pid), () => undefined);

    progress('waiting for the agent\'s first sync');
    const synced = (): boolean => families !== undefined && families.every((f) => syncLines.some((s) => s.sync.family === f));
    if (!(await until(synced, opts.maxSeconds * 1000, 'waiting for its first sync'))) {
      throw new Error(`the agent did not complete its first sync within ${opts.maxSeconds} s (--max-seconds); its log ends:\n${logTail()}`);
    }
    result.agent.families = families!;
    result.agent.firstSyncMs = performance.now() - agentStarted;
    // Let the first sync's follow-ups (the other family, service health) settle: one more min-sync-period.
    await sleep(Math.max(minSyncMs, 200));
    const syncsBefore = syncLines.length;
    const latenciesBefore = latencies.IPv4.length;

    // The churn: R updates a second at a fixed schedule, each one endpoint replaced in one slice.
    const total = Math.max(1, Math.round(opts.rate * opts.durationSeconds));
    const interval = 1000 / opts.rate;
    const t0 = performance.now();
    let lastSent = t0;
    let lastShown = -1;
    for (let i = 0; i < total; i++) {
      const wait = t0 + i * interval - performance.now();
      if (wait > 0) await sleep(wait);
      const code = agent.exitCode();
      if (code !== undefined) throw new Error(`the agent exited (status ${code}) during the churn; its log ends:\n${logTail()}`);
      const k = cluster.pickIndex(slices.length);
      const next = cluster.replaceEndpoint(slices[k]![0]!);
      slices[k]![0] = next;
      api.update('endpointslices', apiSliceOf(next, new Date()));
      lastSent = performance.now();
      const second = Math.floor((lastSent - t0) / 1000);
      if (second !== lastShown) {
        lastShown = second;
        progress(`churn: ${i + 1}/${total} updates sent, ${latencies.IPv4.length - latenciesBefore} latencies logged`);
      }
    }
    result.churn = { sent: total, seconds: (lastSent - t0) / 1000, achievedRate: total > 1 ? (total - 1) / ((lastSent - t0) / 1000) : total, drainMs: 0 };

    progress(`draining: waiting for the agent to program the last updates`);
    const drainMs = Math.max(30_000, 20 * minSyncMs);
    await until(() => latencies.IPv4.length - latenciesBefore >= total, drainMs, 'draining');
    result.churn.drainMs = performance.now() - lastSent;
    // One more min-sync-period, so the other families' lines of the last sync are in too.
    await sleep(Math.min(Math.max(minSyncMs, 200), 5000));

    // The agent's own account, from inside the namespace.
    progress('reading the agent\'s metrics and memory');
    try {
      const text = await getInNamespace(ns, `http://${AGENT_METRICS_ADDRESS}/metrics`);
      result.metric.count = metricSample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }) ?? 0;
      result.metric.syncCount = metricSample(text, 'kubeproxy_sync_proxy_rules_duration_seconds_count', { ip_family: 'IPv4' }) ?? null;
    } catch (err) {
      progress(`cannot read the agent's metrics: ${(err as Error).message}`);
    }
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const hwm = procStatusKiB(status, 'VmHWM');
      const rss = procStatusKiB(status, 'VmRSS');
      result.agent.peakRssMiB = hwm === undefined ? null : hwm / 1024;
      result.agent.rssMiB = rss === undefined ? null : rss / 1024;
    } catch {
      // gone
    }
    progress('counting the rules in the kernel');
    const kernel = choice.iptables ? await readIptablesKernel(ns, choice.iptables.variant, lockFile) : await readNftKernel(ns);
    result.agent.kernel = kernel.kernel;
    result.agent.rulesInVariant = kernel.rulesInVariant;
    if (kernel.error) progress(`cannot count the rules in the kernel: ${kernel.error}`);

    const ipv4 = latencies.IPv4.slice(latenciesBefore);
    result.latencyMs = latencySummary(ipv4);
    result.missing = Math.max(0, total - ipv4.length);
    result.metric.agrees = result.metric.count === latencies.IPv4.length;
    for (const f of ['IPv6'] as const) if (latencies[f].length > 0) result.otherFamilies[f] = latencySummary(latencies[f]);
    const during = syncLines.slice(syncsBefore).filter((s) => s.sync.family === 'IPv4');
    result.syncs = {
      count: during.length,
      full: during.filter((s) => s.sync.full).length,
      partial: during.filter((s) => !s.sync.full).length,
      syncMs: summary(during.map((s) => s.sync.ms)),
      toolMs: summary(during.map((s) => s.sync.toolMs)),
    };
    return result;
  } finally {
    progress('cleaning up');
    await agent?.stop(5000);
    await bridge?.stop(2000);
    await api?.close();
    if (nsCreated) await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    result.elapsedMs = performance.now() - started;
  }
}
