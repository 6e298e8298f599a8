/**
 * Partial syncs are an optimisation of full syncs: after any sequence of
 * partial syncs the rules equal those of one full sync of the same state.
 * Checked here over random change sequences, with the tracer's iptables
 * model (parseIptablesRules applies restore inputs with --noflush
 * semantics, strictly: a chain deleted while referenced is an error).
 * The same property is checked against the real kernel in
 * test/e2e/partial-sync.test.ts.
 */
import t from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import { IptablesBackend } from '../../src/backends/iptables/backend.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
import { DEFAULT_RENDER_CONFIG, renderFull } from '../../src/backends/iptables/render.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import type { Ruleset } from '../../src/trace/iptables/parse.js';
import { RandomCluster, rng } from '../helpers/random-cluster.js';
import { service, slice } from '../helpers/model.js';
import { fakeIptables } from '../helpers/fake-iptables.js';

const cfg = { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' };


/** A canonical dump: per table, chains sorted by name, rules in order. */
function dump(rs: Ruleset): string {
  const out: string[] = [];
  for (const [tn, table] of [...rs.tables].sort(([a], [b]) => a.localeCompare(b))) {
    for (const [cn, chain] of [...table.chains].sort(([a], [b]) => a.localeCompare(b))) {
      if (chain.builtin && chain.rules.length === 0) continue;
      out.push(`${tn} ${cn}`);
      for (const r of chain.rules) out.push(`  ${r.raw}`);
    }
  }
  return out.join('\n');
}

t.test('random change sequences: partial syncs end where one full sync would', async (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const store = new ClusterStore('node-1');
    const cluster = new RandomCluster(store, rng(seed));
    for (let i = 0; i < 5; i++) cluster.step();
    const tool = fakeIptables();
    const backend = new IptablesBackend(tool, cfg);
    let s = store.snapshot();
    await backend.sync(s.snapshot, s.changes, { full: true });
    store.commit(s.changes);
    for (let step = 0; step < 25; step++) {
      cluster.step();
      s = store.snapshot();
      const r = await backend.sync(s.snapshot, s.changes, { full: false });
      store.commit(s.changes);
      if (r.full) t.fail('a partial sync turned full');
      const kernel = parseIptablesRules(tool.inputs.join('\n'));
      const fresh = parseIptablesRules(renderFull(s.snapshot, cfg, { missingJumps: JUMP_RULES, staleServiceChains: [] }).text);
      if (dump(kernel) !== dump(fresh)) {
        t.equal(dump(kernel), dump(fresh), `seed ${seed} step ${step} after: ${cluster.log.slice(-3).join('; ')}`);
        return;
      }
    }
  }
  t.pass('40 seeds x 25 steps: partial == full after every step');
});

t.test('an endpoint change rewrites only that service\'s chains, never KUBE-SERVICES', async (t) => {
  const store = new ClusterStore('node-1');
  for (let i = 1; i <= 50; i++) {
    store.upsertService(service({ name: `s${i}`, clusterIPs: [`10.96.0.${i}`] }));
    store.upsertSlice(slice(`s${i}`, [{ ip: `10.244.1.${i}` }, { ip: `10.244.2.${i}` }]));
  }
  const tool = fakeIptables();
  const backend = new IptablesBackend(tool, cfg);
  let s = store.snapshot();
  const full = await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);

  store.upsertSlice(slice('s7', [{ ip: '10.244.1.7' }, { ip: '10.244.3.7' }]));
  s = store.snapshot();
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  const input = tool.inputs.at(-1)!;
  t.equal(r.full, false);
  t.notMatch(input, /:KUBE-SERVICES /, 'KUBE-SERVICES not rewritten');
  t.notMatch(input, /ns\/s8:/, 'no other service touched');
  t.match(input, /-A KUBE-SVC-\w+ .*ns\/s7:http -> 10\.244\.3\.7:8080/, 'the new endpoint is in');
  t.match(input, /^-X KUBE-SEP-\w+$/m, 'the removed endpoint\'s chain is deleted');
  t.ok(r.bytes < full.bytes / 10, `partial ${r.bytes} B vs full ${full.bytes} B`);

  // A service losing its last endpoint changes the dispatch: KUBE-SERVICES is rewritten, REJECT appears.
  store.upsertSlice(slice('s9', []));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  t.match(tool.inputs.at(-1), /:KUBE-SERVICES - \[0:0\]/);
  t.match(tool.inputs.at(-1), /ns\/s9:http has no endpoints/);

  // Nothing changed: nothing applied.
  const before = tool.inputs.length;
  s = store.snapshot();
  const none = await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(tool.inputs.length, before, 'no restore call without changes');
  t.equal(none.bytes, 0);
});

t.test('a failed partial restore leaves the recorded state alone, and the next full sync repairs everything', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const tool = fakeIptables();
  const backend = new IptablesBackend(tool, cfg);
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.upsertSlice(slice('a', [{ ip: '10.244.1.3' }]));
  s = store.snapshot();
  tool.failNext = 1;
  await t.rejects(backend.sync(s.snapshot, s.changes, { full: false }));
  t.equal(tool.inputs.length, 1, 'nothing applied');
  const r = await backend.sync(s.snapshot, s.changes, { full: true });
  t.equal(r.full, true);
  t.match(tool.inputs.at(-1), /10\.244\.1\.3:8080/);
});

t.test('a change of the node\'s zone label or of large-cluster mode makes the sync full', async (t) => {
  const store = new ClusterStore('node-1');
  store.setNode({ name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'a' }, addresses: ['203.0.113.1'], podCIDRs: [] });
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const tool = fakeIptables();
  const backend = new IptablesBackend(tool, cfg);
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);

  store.setNode({ name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'b' }, addresses: ['203.0.113.1'], podCIDRs: [] });
  s = store.snapshot();
  t.equal((await backend.sync(s.snapshot, s.changes, { full: false })).full, true, 'zone changed: full');
  store.commit(s.changes);

  // 1,001 endpoints: upstream's large-cluster mode drops per-endpoint comments everywhere.
  const many = Array.from({ length: 1001 }, (_, i) => ({ ip: `10.245.${Math.floor(i / 250)}.${(i % 250) + 1}` }));
  store.upsertSlice(slice('a', many));
  s = store.snapshot();
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  t.equal(r.full, true, 'entering large-cluster mode: full');
  t.notMatch(tool.inputs.at(-1), /ns\/a:http -> 10\.245/, 'no per-endpoint comments');
});

t.test('a full sync streams its input to a tool that takes pieces; partial syncs then work from the ports kept', async (t) => {
  const store = new ClusterStore('node-1');
  const cluster = new RandomCluster(store, rng(99));
  for (let i = 0; i < 40; i++) cluster.step();
  const joined = fakeIptables();
  const pieces: string[][] = [];
  const streaming = fakeIptables();
  streaming.restoreChunks = async (chunks: Iterable<string>) => {
    const got: string[] = [];
    for (const c of chunks) got.push(c);
    pieces.push(got);
    await streaming.restore(got.join(''));
  };
  const a = new IptablesBackend(joined, cfg);
  const b = new IptablesBackend(streaming, cfg);
  let s = store.snapshot();
  const ra = await a.sync(s.snapshot, s.changes, { full: true });
  const rb = await b.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  t.equal(pieces.length, 1, 'the full input went through restoreChunks');
  t.equal(streaming.inputs[0], joined.inputs[0], 'the same input either way');
  t.same({ bytes: rb.bytes, rules: rb.rules }, { bytes: ra.bytes, rules: ra.rules });
  t.equal(rb.bytes, Buffer.byteLength(joined.inputs[0]!));
  for (let step = 0; step < 15; step++) {
    cluster.step();
    s = store.snapshot();
    await a.sync(s.snapshot, s.changes, { full: false });
    await b.sync(s.snapshot, s.changes, { full: false });
    store.commit(s.changes);
  }
  t.same(streaming.inputs, joined.inputs, 'and the same partial syncs after it');
});

t.test('a tool that stops reading a full input fails the sync, and the next one is full again', async (t) => {
  const store = new ClusterStore('node-1');
  for (let i = 1; i <= 30; i++) {
    store.upsertService(service({ name: `s${i}`, clusterIPs: [`10.96.0.${i}`] }));
    store.upsertSlice(slice(`s${i}`, [{ ip: `10.244.1.${i}` }]));
  }
  const tool = fakeIptables();
  let stop = true;
  tool.restoreChunks = async (chunks: Iterable<string>) => {
    if (stop) {
      for (const _ of chunks) break;
      return;
    }
    await tool.restore([...chunks].join(''));
  };
  const backend = new IptablesBackend(tool, cfg);
  let s = store.snapshot();
  await t.rejects(backend.sync(s.snapshot, s.changes, { full: true }), /without reading its whole input/);
  stop = false;
  store.upsertSlice(slice('s3', [{ ip: '10.244.9.9' }]));
  s = store.snapshot();
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(r.full, true, 'what the kernel holds is unknown: full');
  t.match(tool.inputs.at(-1), /10\.244\.9\.9:8080/);
});
