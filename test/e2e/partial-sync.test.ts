/**
 * Partial syncs against the real kernel: random change sequences applied as
 * partial syncs in one network namespace end with the same iptables-save as
 * a full sync of the same state in another.
 */
import t from 'tap';
import { execa } from 'execa';
import { ClusterStore } from '../../src/agent/model/store.js';
import { IptablesBackend } from '../../src/backends/iptables/backend.js';
import { DEFAULT_RENDER_CONFIG } from '../../src/backends/iptables/render.js';
import type { IptablesTool } from '../../src/backends/iptables/tool.js';
import { RandomCluster, rng } from '../helpers/random-cluster.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program iptables');
  process.exit(0);
}

const cfg = { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' };
const prefix = `kpt-partial-${process.pid}`;

/** The real tools, inside a namespace. */
function nsTool(ns: string): IptablesTool {
  return {
    async save() {
      return (await execa('ip', ['netns', 'exec', ns, 'iptables-save'])).stdout;
    },
    async restore(input) {
      await execa('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush', '-w', '5'], { input });
    },
    async chainExists(table, chain) {
      return (await execa('ip', ['netns', 'exec', ns, 'iptables', '-t', table, '-S', chain], { reject: false })).exitCode === 0;
    },
  };
}

/** iptables-save without comments and counters, chains in name order, rules in order. */
async function normalisedSave(ns: string): Promise<string> {
  const text = (await execa('ip', ['netns', 'exec', ns, 'iptables-save'])).stdout;
  const tables = new Map<string, { chains: Set<string>; rules: Map<string, string[]> }>();
  let cur: { chains: Set<string>; rules: Map<string, string[]> } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === 'COMMIT' || line === '') continue;
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: new Map() };
      tables.set(line, cur);
    } else if (line.startsWith(':')) cur!.chains.add(line.split(' ')[0]!);
    else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      if (!cur!.rules.has(chain)) cur!.rules.set(chain, []);
      cur!.rules.get(chain)!.push(line);
    }
  }
  const out: string[] = [];
  for (const [name, tbl] of [...tables].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(name, ...[...tbl.chains].sort());
    for (const chain of [...tbl.rules.keys()].sort()) out.push(...tbl.rules.get(chain)!);
  }
  return out.join('\n');
}

t.test('partial syncs equal a full sync, in the kernel', async (t) => {
  for (const seed of [11, 22, 33]) {
    const a = `${prefix}-a-${seed}`;
    const b = `${prefix}-b-${seed}`;
    await execa('ip', ['netns', 'add', a]);
    await execa('ip', ['netns', 'add', b]);
    t.teardown(async () => {
      await execa('ip', ['netns', 'del', a], { reject: false });
      await execa('ip', ['netns', 'del', b], { reject: false });
    });
    const store = new ClusterStore('node-1');
    const cluster = new RandomCluster(store, rng(seed));
    for (let i = 0; i < 6; i++) cluster.step();
    const partial = new IptablesBackend(nsTool(a), cfg);
    let s = store.snapshot();
    await partial.sync(s.snapshot, s.changes, { full: true });
    store.commit(s.changes);
    let partialCount = 0;
    for (let step = 1; step <= 20; step++) {
      cluster.step();
      s = store.snapshot();
      const r = await partial.sync(s.snapshot, s.changes, { full: false });
      store.commit(s.changes);
      if (!r.full) partialCount++;
      if (step % 5 === 0) {
        // A full sync of the same state in a namespace that has seen other states before.
        const full = new IptablesBackend(nsTool(b), cfg);
        await full.sync(s.snapshot, s.changes, { full: true });
        const got = await normalisedSave(a);
        const want = await normalisedSave(b);
        t.equal(got, want, `seed ${seed} step ${step}: partial == full`);
      }
    }
    t.equal(partialCount, 20, 'every step was a partial sync');
  }
});
