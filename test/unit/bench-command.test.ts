/** `kube-proxy-ts bench --no-apply` end to end (no root), its JSON, its table, its arguments, and a run stopped at its deadline. */
import t from 'tap';
import type { Test } from 'tap';
import { parseBenchArgs, progressWriter, runBenchCommand } from '../../src/bench/bench-command.js';
import type { BenchCommandIO } from '../../src/bench/bench-command.js';
import { DeadlineError, recordingNft, recordingTool } from '../../src/bench/bench-tools.js';
import type { BenchResult } from '../../src/bench/run-bench.js';
import { iptablesTarget, nftablesTarget, PHASES, runScenario } from '../../src/bench/scenario.js';

function io(tty = false): BenchCommandIO & { out: string; err: string } {
  const o = {
    out: '',
    err: '',
    stderrIsTTY: tty,
    stdout: (s: string) => void (o.out += s),
    stderr: (s: string) => void (o.err += s),
  };
  return o;
}

/** Runs the bench command with `args` and --json, asserts it exits 0: its result, and what it wrote. */
async function benchJson(t: Test, args: string[]): Promise<{ r: BenchResult; x: ReturnType<typeof io> }> {
  const x = io();
  const code = await runBenchCommand([...args, '--json'], x);
  t.equal(code, 0, x.err);
  return { r: JSON.parse(x.out) as BenchResult, x };
}

t.test('--no-apply --json: the whole pipeline, the JSON shape', async (t) => {
  const { r, x } = await benchJson(t, ['--services', '40', '--endpoints-per-service', '3', '--changes', '4', '--repeat', '2', '--seed', '5', '--no-apply']);
  t.equal(r.bench, 'kube-proxy-ts');
  t.equal(r.schema, 2);
  t.equal(r.mode, 'iptables');
  t.equal(r.apply, false);
  t.same(r.tool.command, null);
  t.same(r.iptables!.variant, null);
  t.same(r.iptables!.restore, null);
  t.same(r.params, { services: 40, endpointsPerService: 3, changes: 4, repeat: 2, seed: 5, maxSeconds: 300 });
  t.equal(r.cluster!.services, 40);
  t.equal(r.cluster!.endpoints, 120);
  t.equal(r.skipped, undefined);
  t.equal(r.aborted, undefined);
  t.same(Object.keys(r.phases!).sort(), [...PHASES].sort());
  t.equal(r.phases!.full.samples, 2, 'one cold full sync per repeat');
  for (const p of ['endpointChange', 'serviceAdd', 'serviceRemove'] as const) t.equal(r.phases![p].samples, 8, `${p}: K per repeat`);
  for (const p of PHASES) {
    const s = r.phases![p];
    for (const k of ['totalMs', 'agentMs', 'toolMs', 'bytes', 'rules'] as const) {
      t.same(Object.keys(s[k]).sort(), ['max', 'median', 'min', 'p90'], `${p}.${k}`);
      t.ok(s[k].median <= s[k].p90 && s[k].min <= s[k].median && s[k].p90 <= s[k].max, `${p}.${k} ordered`);
    }
    t.equal(s.toolMs.max, 0, `${p}: nothing applied, no tool time`);
    t.ok(s.bytes.min > 0, `${p}: every change produced input`);
    t.ok(s.peakRssMiB > 0);
  }
  t.ok(r.phases!.full.bytes.median > 10 * r.phases!.endpointChange.bytes.median, 'a single-endpoint change is a small fraction of a full sync');
  t.ok(r.phases!.endpointChange.bytes.max < 5000, 'a single-endpoint change stays under 5 KB');
  t.ok(r.peakRssMiB > 0 && r.elapsedMs > 0);
  t.ok(r.peakRssAllRunsMiB >= r.peakRssMiB, 'the peak over both runs is at least the first run\'s');
  for (const p of PHASES) t.ok(r.phases![p].peakRssMiB <= r.peakRssMiB + 1e-9, `${p}: its peak is the first run's`);
  t.match(x.err, /repeat 1\/2: cold full sync/, 'progress on stderr');
  t.notMatch(x.out, /repeat 1\/2:/, 'and not on stdout');
});

t.test('the same seed renders the same bytes', async (t) => {
  const run = async () => {
    const x = io();
    await runBenchCommand(['--services', '25', '--endpoints-per-service', '2', '--changes', '3', '--repeat', '1', '--no-apply', '--json'], x);
    const r = JSON.parse(x.out) as BenchResult;
    return PHASES.map((p) => [r.phases![p].bytes, r.phases![p].rules]);
  };
  t.same(await run(), await run());
});

t.test('the table', async (t) => {
  const x = io(true);
  const code = await runBenchCommand(['--services', '20', '--endpoints-per-service', '2', '--changes', '2', '--repeat', '1', '--no-apply'], x);
  t.equal(code, 0);
  t.match(x.out, /20 services × 2 endpoints, nothing applied \(--no-apply\)/);
  t.match(x.out, /cluster \(seed 1\): 20 services/);
  for (const label of ['cold full sync', 'endpoint change', 'service added', 'service removed']) t.match(x.out, new RegExp(`^${label} `, 'm'));
  t.match(x.out, /total med .* p90 .* agent med .* tool med .* bytes med .* rules med .* peak RSS/);
  t.match(x.err, /\r\x1b\[K/, 'on a terminal the progress line is rewritten');
});

t.test('arguments', async (t) => {
  const ok = parseBenchArgs(['--services', '10']);
  t.equal(ok.kind, 'options');
  if (ok.kind === 'options') {
    t.match(ok.options, { mode: 'iptables', services: 10, endpointsPerService: 10, changes: 10, repeat: 3, seed: 1, apply: true, maxSeconds: 300 });
    t.equal(ok.options.iptables, undefined);
  }
  const nft = parseBenchArgs(['--services', '10', '--iptables', 'nft']);
  t.equal(nft.kind === 'options' && nft.options.iptables, 'nft');
  const nftables = parseBenchArgs(['--services', '10', '--mode', 'nftables']);
  t.equal(nftables.kind === 'options' && nftables.options.mode, 'nftables');
  const bad: Array<[string[], RegExp]> = [
    [[], /--services is required/],
    [['--services', 'lots'], /--services: "lots" must be a whole number/],
    [['--services', '0'], /≥ 1/],
    [['--services', '5', '--repeat', '0'], /--repeat/],
    [['--services', '5', '--mode', 'ipvs'], /ipvs/],
    [['--services', '5', '--iptables', 'both'], /both/],
    [['--services', '5', '--no-apply', '--iptables', 'nft'], /nothing is applied/],
    [['--services', '5', '--mode', 'nftables', '--iptables', 'legacy'], /only in iptables mode/],
    [['--services', '5', '--namespace-prefix', 'a b'], /--namespace-prefix/],
    [['--services', '5', 'extra'], /too many arguments|unknown/i],
  ];
  for (const [argv, re] of bad) {
    const x = io();
    t.equal(await runBenchCommand(argv, x), 2, argv.join(' '));
    t.match(x.err, re, argv.join(' '));
  }
  const help = io();
  t.equal(await runBenchCommand(['--help'], help), 0);
  t.match(help.out, /--endpoints-per-service/);
});

t.test('progress without a terminal: one line per phase, not per operation', async (t) => {
  const x = io(false);
  const p = progressWriter(x);
  for (let i = 1; i <= 5; i++) p.update(`repeat 1/1: endpoint change ${i}/5`);
  p.update('repeat 1/1: service added 1/5');
  p.done();
  t.equal(x.err, 'repeat 1/1: endpoint change\nrepeat 1/1: service added\n');
});

t.test('a deadline stops the scenario and keeps what completed', async (t) => {
  const tool = recordingTool();
  const target = iptablesTarget(tool);
  const restore = tool.restore.bind(tool);
  const restoreChunks = tool.restoreChunks.bind(tool);
  let n = 0;
  const call = (): void => {
    if (++n === 4) throw new DeadlineError('over budget: iptables-legacy-restore killed after 1.0 s');
  };
  tool.restore = async (input: string) => {
    call();
    return restore(input);
  };
  tool.restoreChunks = async (chunks: Iterable<string>) => {
    call();
    return restoreChunks(chunks);
  };
  const r = await runScenario({ spec: { services: 10, endpointsPerService: 2, seed: 1 }, changes: 5, target });
  t.match(r.aborted, /over budget.*during endpoint change/);
  t.equal(r.samples.full.length, 1);
  t.equal(r.samples.endpointChange.length, 2);
  t.equal(r.samples.serviceAdd.length, 0);
});

t.test('--mode nftables --no-apply: the nftables backend through the same scenario', async (t) => {
  const { r } = await benchJson(t, ['--mode', 'nftables', '--services', '30', '--endpoints-per-service', '3', '--changes', '3', '--repeat', '1', '--no-apply']);
  t.equal(r.mode, 'nftables');
  t.equal(r.schema, 2);
  t.same(r.iptables, null, 'no iptables variant in nftables mode');
  t.same(r.tool.command, null);
  t.equal(r.phases!.full.samples, 1);
  for (const p of PHASES) {
    t.equal(r.phases![p].samples, p === 'full' ? 1 : 3, `${p} samples`);
    t.equal(r.phases![p].toolMs.max, 0, `${p}: nothing applied`);
  }
  for (const p of ['full', 'endpointChange', 'serviceAdd'] as const) t.ok(r.phases![p].bytes.min > 0, `${p}: input written`);
  t.ok(r.phases!.full.rules.median > r.phases!.endpointChange.rules.median, 'a full sync writes more rules and elements than an endpoint change');
  const table = io();
  t.equal(await runBenchCommand(['--mode', 'nftables', '--services', '10', '--endpoints-per-service', '2', '--changes', '1', '--repeat', '1', '--no-apply'], table), 0);
  t.match(table.out, /nftables mode, 10 services × 2 endpoints, nothing applied/);
  t.match(table.out, /rules and set\/map elements/);
});

t.test('a deadline in nftables mode stops the scenario too', async (t) => {
  const nft = recordingNft();
  const run = nft.run.bind(nft);
  let n = 0;
  nft.run = async (text: string) => {
    if (++n === 3) throw new DeadlineError('over budget: nft killed after 1.0 s');
    return run(text);
  };
  const r = await runScenario({ spec: { services: 10, endpointsPerService: 2, seed: 1 }, changes: 5, target: nftablesTarget(nft) });
  t.match(r.aborted, /over budget.*during endpoint change/);
  t.equal(r.samples.full.length, 1);
  t.equal(r.samples.endpointChange.length, 1);
});

t.test('repeats change different services; the same repeat changes the same ones; every change reaches the rules', async (t) => {
  /** The nft inputs of a run's endpoint changes and removals (the full sync and the additions are the same in every repeat). */
  const changes = async (seed: number, run: number): Promise<string[]> => {
    const nft = recordingNft();
    const texts: string[] = [];
    const record = nft.run.bind(nft);
    nft.run = async (input: string | Iterable<string>) => {
      texts.push(typeof input === 'string' ? input : [...input].join(''));
      return record(input);
    };
    const r = await runScenario({ spec: { services: 60, endpointsPerService: 2, seed }, changes: 6, run, target: nftablesTarget(nft) });
    t.equal(r.samples.endpointChange.length, 6);
    for (const p of ['endpointChange', 'serviceRemove'] as const) t.ok(r.samples[p].every((s) => s.bytes > 0), `seed ${seed} run ${run}: every ${p} wrote something`);
    return [...texts.slice(1, 7), ...texts.slice(13)];
  };
  for (const seed of [1, 2, 3]) {
    const first = await changes(seed, 0);
    t.same(await changes(seed, 0), first, `seed ${seed}: deterministic`);
    t.not((await changes(seed, 1)).join('\n'), first.join('\n'), `seed ${seed}: the second repeat picks other changes`);
  }
});
