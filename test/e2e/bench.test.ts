/**
 * `kube-proxy-ts bench` against the real iptables and nft in throwaway
 * network namespaces: a small bench with each iptables variant and with
 * nftables, its namespace present while it runs and gone afterwards (also
 * when the tool fails), and a too-slow cell skipped without creating
 * anything. Never asserts timings.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runBenchCommand } from '../../src/bench/bench-command.js';
import type { BenchCommandIO } from '../../src/bench/bench-command.js';
import type { BenchResult } from '../../src/bench/run-bench.js';
import { PHASES } from '../../src/bench/scenario.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and run iptables in them');
  process.exit(0);
}

const namespaces = (prefix: string): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));

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

t.teardown(() => {
  for (const ns of namespaces(`kpt-bench-e2e-${process.pid}`)) execFileSync('ip', ['netns', 'del', ns]);
});

const CELLS = [
  { label: 'iptables-legacy', args: ['--iptables', 'legacy'], command: 'iptables-legacy-restore', variant: 'legacy' },
  { label: 'iptables-nft', args: ['--iptables', 'nft'], command: 'iptables-nft-restore', variant: 'nft' },
  { label: 'nftables', args: ['--mode', 'nftables'], command: 'nft', variant: undefined },
] as const;

for (const cell of CELLS) {
  t.test(`a small real bench with ${cell.label}, in namespaces it deletes`, async (t) => {
    const prefix = `kpt-bench-e2e-${process.pid}-${cell.label}`;
    const seen = new Set<string>();
    const x = io((line) => {
      if (/cold full sync|endpoint change/.test(line)) for (const ns of namespaces(prefix)) seen.add(ns);
    });
    const code = await runBenchCommand(
      ['--services', '50', '--endpoints-per-service', '4', '--changes', '3', '--repeat', '2', ...cell.args, '--namespace-prefix', prefix, '--json'],
      x,
    );
    t.equal(code, 0, x.err);
    const r = JSON.parse(x.out) as BenchResult;
    t.equal(r.apply, true);
    t.equal(r.tool.command, cell.command);
    if (cell.variant) {
      t.equal(r.mode, 'iptables');
      t.equal(r.iptables?.variant, cell.variant);
      t.equal(r.iptables?.restore, cell.command);
    } else {
      t.equal(r.mode, 'nftables');
      t.same(r.iptables, null);
    }
    t.equal(r.skipped, undefined);
    t.equal(r.aborted, undefined);
    t.equal(r.phases!.full.samples, 2);
    for (const p of PHASES) {
      t.ok(r.phases![p].toolMs.min > 0, `${p}: the kernel tool ran every time`);
      t.ok(r.phases![p].bytes.min > 0, `${p}: with input`);
      t.ok(r.phases![p].totalMs.min >= r.phases![p].toolMs.min, `${p}: total covers the tool`);
    }
    t.ok(r.phases!.full.rules.median > 10 * r.phases!.endpointChange.rules.median, 'an endpoint change is a small part of a full sync');
    t.same([...seen].sort(), [`${prefix}-0`, `${prefix}-1`], 'one namespace per repeat, present while it ran');
    t.same(namespaces(prefix), [], 'and deleted');
  });
}

t.test('a failing kernel tool still deletes the namespace', async (t) => {
  const prefix = `kpt-bench-e2e-${process.pid}-fail`;
  // A PATH with `ip` but no iptables: the first iptables call fails.
  const dir = mkdtempSync(join(tmpdir(), 'kpt-bench-path-'));
  symlinkSync(execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim(), join(dir, 'ip'));
  const path = process.env.PATH;
  process.env.PATH = dir;
  let code: number;
  const x = io();
  try {
    code = await runBenchCommand(['--services', '5', '--endpoints-per-service', '2', '--changes', '1', '--repeat', '1', '--iptables', 'legacy', '--namespace-prefix', prefix], x);
  } finally {
    process.env.PATH = path;
    rmSync(dir, { recursive: true, force: true });
  }
  t.equal(code, 1);
  t.match(x.err, /iptables-legacy-save in namespace .* failed/);
  t.same(namespaces(prefix), [], 'no namespace left');
});

t.test('a cell the floor says would take minutes is skipped at once, creating nothing', async (t) => {
  const prefix = `kpt-bench-e2e-${process.pid}-skip`;
  const x = io();
  const code = await runBenchCommand(['--services', '10000', '--iptables', 'nft', '--max-seconds', '60', '--namespace-prefix', prefix, '--json'], x);
  t.equal(code, 0);
  const r = JSON.parse(x.out) as BenchResult;
  t.match(r.skipped, /iptables-nft: the kernel tool alone would take about .* \(budget 60 s, --max-seconds\)/);
  t.match(r.skipped, /97 min/, 'citing the measured floor');
  t.same(r.phases, null);
  t.same(namespaces(prefix), []);
  t.notMatch(x.err, /creating namespace/);
});
