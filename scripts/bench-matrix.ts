/**
 * The standard bench matrix (`npm run bench`, as root): 1,000, 5,000 and
 * 10,000 services × 10 endpoints, every proxy mode that exists (iptables,
 * with both iptables-legacy and iptables-nft, and nftables), each cell one
 * `kube-proxy-ts bench --json` process of its own (so its peak RSS is its
 * own). iptables cells that the measured floor says would take minutes are
 * skipped by the bench itself, with the reason. Writes bench/results.json
 * and bench/sync-time.svg (one line per mode), prints a summary table and
 * how long it all took.
 *
 *   node dist/scripts/bench-matrix.js [--services 1000,5000,10000] [--endpoints 10]
 *       [--modes iptables-legacy,iptables-nft,nftables] [--changes 3] [--repeat 3]
 *       [--nft-repeat R] [--seed 1] [--max-seconds 420] [--out DIR]
 *   node dist/scripts/bench-matrix.js --replot bench/results.json   (redraw the chart and table only)
 *
 * On a 2-core host the iptables cells take about 10 minutes, even on a busy
 * host: iptables-legacy rewrites the whole table on every change, so each
 * partial sync at 10,000 services costs seconds (3-5 s here). The nftables
 * cells take under a minute (--nft-repeat sets their repeats apart, default
 * --repeat).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { formatBytes, formatMs } from '../src/bench/format.js';
import type { BenchResult } from '../src/bench/run-bench.js';
import { formatSeconds } from '../src/bench/run-bench.js';
import { lineChartSvg } from '../src/bench/svg-chart.js';
import type { ChartSeries } from '../src/bench/svg-chart.js';

/** A column of the matrix: a proxy mode, and for iptables which iptables. */
const KINDS = ['iptables-legacy', 'iptables-nft', 'nftables'] as const;
type Kind = (typeof KINDS)[number];

interface MatrixOptions {
  services: number[];
  endpoints: number;
  modes: Kind[];
  changes: number;
  repeat: number;
  /** Repeats of the nftables cells; undefined: --repeat. */
  nftRepeat?: number;
  seed: number;
  maxSeconds: number;
  out: string;
  /** Redraw from this results.json instead of running. */
  replot?: string;
}

const here = dirname(fileURLToPath(import.meta.url));

function repoRoot(): string {
  let d = here;
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the repository root (package.json)');
    d = up;
  }
  return d;
}

function parseMatrixArgs(argv: string[]): MatrixOptions {
  const o: MatrixOptions = { services: [1000, 5000, 10000], endpoints: 10, modes: [...KINDS], changes: 3, repeat: 3, seed: 1, maxSeconds: 420, out: join(repoRoot(), 'bench') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const num = (): number => {
      if (!/^\d+$/.test(value)) throw new Error(`${flag}: ${value} is not a whole number`);
      return Number(value);
    };
    if (flag === '--services') o.services = value.split(',').map((v) => Number(v));
    else if (flag === '--endpoints') o.endpoints = num();
    else if (flag === '--modes') o.modes = value.split(',') as Kind[];
    // The former --variants legacy,nft: the iptables modes.
    else if (flag === '--variants') o.modes = value.split(',').map((v) => `iptables-${v}` as Kind);
    else if (flag === '--changes') o.changes = num();
    else if (flag === '--repeat') o.repeat = num();
    else if (flag === '--nft-repeat') o.nftRepeat = num();
    else if (flag === '--seed') o.seed = num();
    else if (flag === '--max-seconds') o.maxSeconds = num();
    else if (flag === '--out') o.out = value;
    else if (flag === '--replot') o.replot = value;
    else throw new Error(`unknown flag ${flag}`);
  }
  if (o.services.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--services: a comma-separated list of whole numbers');
  if (o.modes.length === 0 || o.modes.some((m) => !(KINDS as readonly string[]).includes(m))) throw new Error(`--modes: some of ${KINDS.join(', ')}`);
  return o;
}

/** The agent's entry point: compiled next to this script, or the TypeScript source (run through a loader). */
function agentMain(): string {
  const js = join(here, '..', 'src', 'agent', 'main.js');
  return existsSync(js) ? js : join(here, '..', 'src', 'agent', 'main.ts');
}

/** The column of a cell (schema 1 results, from before nftables, have no `tool`). */
function kindOf(c: BenchResult): Kind | null {
  if (c.mode === 'nftables') return 'nftables';
  const v = c.iptables?.variant;
  return v ? `iptables-${v}` : null;
}

function repeatFor(o: MatrixOptions, services: number, kind: Kind): number {
  if (kind !== 'nftables') return o.repeat;
  return o.nftRepeat ?? o.repeat;
}

async function runCell(o: MatrixOptions, services: number, kind: Kind, label: string): Promise<BenchResult> {
  const args = [
    ...process.execArgv,
    agentMain(),
    'bench',
    '--mode', kind === 'nftables' ? 'nftables' : 'iptables',
    '--services', String(services),
    '--endpoints-per-service', String(o.endpoints),
    '--changes', String(o.changes),
    '--repeat', String(repeatFor(o, services, kind)),
    '--seed', String(o.seed),
    ...(kind === 'nftables' ? [] : ['--iptables', kind.slice('iptables-'.length)]),
    '--max-seconds', String(o.maxSeconds),
    '--json',
  ];
  const child = execa(process.execPath, args, { reject: false, maxBuffer: 64 * 1024 * 1024, stdin: 'ignore' });
  let buf = '';
  child.stderr?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      process.stderr.write(`[${label}] ${buf.slice(0, nl)}\n`);
      buf = buf.slice(nl + 1);
    }
  });
  const r = await child;
  try {
    return JSON.parse(String(r.stdout)) as BenchResult;
  } catch {
    throw new Error(`${label}: the bench failed (exit status ${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`);
  }
}

const COLORS: Record<Kind, string> = { 'iptables-legacy': '#1f6fb4', 'iptables-nft': '#d9502b', nftables: '#2a9d4b' };

function estimated(c: BenchResult): number | null {
  return c.tool?.estimatedSeconds ?? c.iptables?.estimatedSeconds ?? null;
}

function chart(cells: BenchResult[]): string {
  const series: ChartSeries[] = [];
  const notes: string[] = [];
  const kinds = KINDS.filter((k) => cells.some((c) => kindOf(c) === k));
  const point = (c: BenchResult, f: (r: BenchResult) => number): { x: number; y: number } => ({ x: c.params.services, y: f(c) });
  const ranOf = (k: Kind): BenchResult[] => cells.filter((c) => kindOf(c) === k && c.phases && !c.skipped);
  for (const k of kinds) {
    const ran = ranOf(k);
    series.push({ label: `${k}: full sync`, color: COLORS[k], points: ran.map((c) => point(c, (r) => r.phases!.full.totalMs.median)) });
    series.push({ label: `${k}: endpoint change`, color: COLORS[k], dashed: true, points: ran.map((c) => point(c, (r) => r.phases!.endpointChange.totalMs.median)) });
    for (const c of cells.filter((x) => kindOf(x) === k && x.aborted)) {
      notes.push(`${k} at ${c.params.services.toLocaleString('en-US')} services: stopped at its budget, partial samples`);
    }
    for (const c of cells.filter((x) => kindOf(x) === k && x.skipped)) {
      notes.push(`${k} at ${c.params.services.toLocaleString('en-US')} services: skipped (estimated ${formatSeconds(estimated(c) ?? NaN)} of kernel tool time)`);
    }
  }
  for (const k of kinds.filter((x) => x !== 'iptables-nft')) {
    const ran = ranOf(k);
    if (ran.length > 0) series.push({ label: `${k}: agent (full sync)`, color: COLORS[k], dotted: true, points: ran.map((c) => point(c, (r) => r.phases!.full.agentMs.median)) });
  }
  const eps = cells[0]?.params.endpointsPerService ?? 10;
  return lineChartSvg({
    title: `kube-proxy-ts: sync time (median), ${eps} endpoints per service`,
    xLabel: 'services (log scale)',
    yLabel: 'sync time (log scale)',
    series,
    notes,
  });
}

function summaryTable(cells: BenchResult[]): string {
  const header = ['services', 'mode', 'full sync', 'agent', 'tool', 'agent %', 'full input', 'endpoint change', 'change input', 'service add', 'service remove', 'peak RSS'];
  const rows: string[][] = [];
  for (const c of cells) {
    const head = [c.params.services.toLocaleString('en-US'), `${kindOf(c) ?? '-'}${c.params.repeat === 1 ? ' (1 run)' : ''}${c.aborted ? ' (stopped at its budget: partial)' : ''}`];
    if (c.skipped || !c.phases) {
      rows.push([...head, `skipped: about ${formatSeconds(estimated(c) ?? NaN)} of kernel time (floor)`, '', '', '', '', '', '', '', '', '']);
      continue;
    }
    const ph = c.phases;
    rows.push([
      ...head,
      formatMs(ph.full.totalMs.median),
      formatMs(ph.full.agentMs.median),
      formatMs(ph.full.toolMs.median),
      `${(ph.full.agentShare * 100).toFixed(0)}%`,
      formatBytes(ph.full.bytes.median),
      `${formatMs(ph.endpointChange.totalMs.median)} (p90 ${formatMs(ph.endpointChange.totalMs.p90)}; agent ${formatMs(ph.endpointChange.agentMs.median)})`,
      formatBytes(ph.endpointChange.bytes.median),
      `${formatMs(ph.serviceAdd.totalMs.median)} (${formatBytes(ph.serviceAdd.bytes.median)})`,
      `${formatMs(ph.serviceRemove.totalMs.median)} (${formatBytes(ph.serviceRemove.bytes.median)})`,
      `${c.peakRssMiB.toFixed(0)} MiB`,
    ]);
  }
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const o = parseMatrixArgs(process.argv.slice(2));
  if (o.replot) {
    const saved = JSON.parse(readFileSync(o.replot, 'utf8')) as { cells: BenchResult[] };
    const svg = join(dirname(o.replot), 'sync-time.svg');
    writeFileSync(svg, chart(saved.cells));
    process.stdout.write(`${summaryTable(saved.cells)}\n\nwrote ${svg}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench-matrix: needs root (it creates throwaway network namespaces and runs iptables in them)\n');
    return 1;
  }
  const started = Date.now();
  const loadBefore = loadavg();
  const cells: BenchResult[] = [];
  for (const services of o.services) {
    for (const kind of o.modes) {
      const label = `${services.toLocaleString('en-US')} × ${o.endpoints}, ${kind}`;
      const t = Date.now();
      const r = await runCell(o, services, kind, label);
      cells.push(r);
      process.stderr.write(`[${label}] ${r.skipped ? 'skipped (reason above)' : r.aborted ? `stopped at its budget: ${r.aborted}` : 'done'} (${formatSeconds((Date.now() - t) / 1000)})\n`);
    }
  }
  const elapsedMs = Date.now() - started;
  mkdirSync(o.out, { recursive: true });
  const results = {
    generatedAt: new Date().toISOString(),
    command: `node ${relative(repoRoot(), fileURLToPath(import.meta.url))} ${process.argv.slice(2).join(' ')}`.trim(),
    matrix: o,
    elapsedMs,
    /** 1, 5 and 15 minute load averages before and after: other work on the host skews the timings. */
    loadAverage: { before: loadBefore, after: loadavg() },
    cells,
  };
  writeFileSync(join(o.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(o.out, 'sync-time.svg'), chart(cells));
  process.stdout.write(`${summaryTable(cells)}\n\n`);
  process.stdout.write(
    `${o.repeat} repeats${o.nftRepeat !== undefined ? ` (nftables: ${o.nftRepeat})` : ''} × (cold full sync, ${o.changes} endpoint changes, ${o.changes} services added, ${o.changes} removed), seed ${o.seed}; medians\n`,
  );
  process.stdout.write(`load average (1 min) ${loadBefore[0]!.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after, on ${availableParallelism()} CPUs\n`);
  process.stdout.write(`matrix took ${formatSeconds(elapsedMs / 1000)}; wrote ${join(o.out, 'results.json')} and ${join(o.out, 'sync-time.svg')}\n`);
  return cells.some((c) => c.aborted) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench-matrix: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
