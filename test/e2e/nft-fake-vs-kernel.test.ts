/**
 * The Fake and the real nft end in the same state. The same transactions
 * (full syncs, partial syncs, a foreign change and a repairing full sync)
 * go to the kernel in one throwaway network namespace and to the Fake; after
 * each, the Fake's dump is loaded into a second namespace and both kernels'
 * `nft -j list table ip kube-proxy` are compared, normalised. Needs root.
 */
import t from 'tap';
import { execa } from 'execa';
import { ClusterStore } from '../../src/agent/model/store.js';
import { NftablesBackend } from '../../src/backends/nftables/backend.js';
import { execApplier, fakeApplier } from '../../src/backends/nftables/nft/applier.js';
import type { NftApplier } from '../../src/backends/nftables/nft/applier.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { diffTables, normalizeTable } from '../../src/backends/nftables/nft/normalize.js';
import { execNft } from '../../src/backends/nftables/nft/run.js';
import { Transaction } from '../../src/backends/nftables/nft/transaction.js';
import type { NftRenderConfig } from '../../src/backends/nftables/render.js';
import { service, slice } from '../helpers/model.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program nftables');
  process.exit(0);
}
if ((await execa('nft', ['--version'], { reject: false })).exitCode !== 0) {
  t.plan(0, 'skipped: nft is not installed');
  process.exit(0);
}

const prefix = `kpt-nft-${process.pid}`;
const namespaces: string[] = [];
async function netns(name: string): Promise<string> {
  const ns = `${prefix}-${name}`;
  await execa('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  return ns;
}
t.teardown(async () => {
  for (const ns of namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
});

const inNs = (ns: string): string[] => ['ip', 'netns', 'exec', ns];

/** Both appliers at once: every transaction goes to the kernel and to the Fake. */
function both(kernel: NftApplier, fake: FakeNft): NftApplier {
  const f = fakeApplier(fake);
  return {
    async apply(tx) {
      await kernel.apply(tx);
      await f.apply(tx);
    },
    list: (family, table) => kernel.list(family, table),
    setHandle: (family, table, set) => kernel.setHandle(family, table, set),
  };
}

async function listed(ns: string): Promise<ReturnType<typeof normalizeTable>> {
  return normalizeTable(await execNft({ prefix: inNs(ns) }).json(['list', 'table', 'ip', 'kube-proxy']));
}

t.test('the Fake ends where the kernel does', async (t) => {
  const a = await netns('a');
  const b = await netns('b');
  const fake = new FakeNft();
  const cfg: NftRenderConfig = { clusterCIDR: '10.244.0.0/16', masqueradeAll: false, masqueradeBit: 14, nodeName: 'node-1', nodeIP: '192.168.0.2', serviceCIDRs: ['10.96.0.0/16'] };
  const backend = new NftablesBackend(both(execApplier({ prefix: inNs(a) }), fake), cfg, { deferStaleChains: false });
  const store = new ClusterStore('node-1');

  async function check(what: string): Promise<void> {
    // Load the Fake's state into an empty namespace b, through the real nft.
    await execa('ip', [...inNs(b).slice(1), 'nft', 'flush', 'ruleset']);
    await execNft({ prefix: inNs(b) }).run(fake.dump('ip', 'kube-proxy'));
    const d = diffTables(await listed(a), await listed(b), ['kernel', 'fake']);
    t.equal(d, '', `${what}: kernel == fake`);
    // And directly: the same chains, sets and maps by name.
    const kernel = await listed(a);
    const tbl = fake.table('ip', 'kube-proxy')!;
    t.same(Object.keys(kernel.chains), [...tbl.chains.keys()].sort(), `${what}: chain names`);
    t.same([...Object.keys(kernel.sets), ...Object.keys(kernel.maps)].sort(), [...tbl.sets.keys()].sort(), `${what}: set and map names`);
  }

  // 1. A full sync of every feature.
  store.upsertService(service({ name: 'web', clusterIPs: ['10.96.0.10'] }));
  store.upsertSlice(slice('web', [{ ip: '10.244.1.1' }, { ip: '10.244.2.1', node: 'node-2' }]));
  store.upsertService(
    service({
      name: 'lb',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.11'],
      externalTrafficPolicy: 'Local',
      loadBalancerIPs: ['198.51.100.1'],
      loadBalancerSourceRanges: ['203.0.113.0/25', '192.168.0.0/24'],
      externalIPs: ['192.0.2.1'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 600,
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 },
        { name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053, targetPort: 53 },
      ],
    }),
  );
  store.upsertSlice(
    slice('lb', [{ ip: '10.244.1.5' }, { ip: '10.244.2.5', node: 'node-2' }], {
      ports: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
    }),
  );
  store.upsertService(service({ name: 'empty', clusterIPs: ['10.96.0.12'], internalTrafficPolicy: 'Local', ports: [{ name: 'x', protocol: 'SCTP', port: 9, nodePort: 0, targetPort: 9 }] }));
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  await check('full sync');

  // 2. Partial syncs: endpoints move, a service goes, one loses its endpoints, the affinity timeout changes.
  store.upsertSlice(slice('web', [{ ip: '10.244.1.1' }, { ip: '10.244.3.1', node: 'node-3' }]));
  store.upsertService(
    service({
      name: 'lb',
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.11'],
      externalTrafficPolicy: 'Local',
      loadBalancerIPs: ['198.51.100.1'],
      loadBalancerSourceRanges: ['203.0.113.0/25'],
      externalIPs: ['192.0.2.1'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 60,
      ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }],
    }),
  );
  s = store.snapshot();
  t.equal((await backend.sync(s.snapshot, s.changes, { full: false })).full, false);
  store.commit(s.changes);
  await check('partial sync 1');
  store.deleteService('ns', 'empty');
  store.upsertSlice(slice('web', []));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  await check('partial sync 2');

  // 3. Someone adds junk to our table and flushes a chain; a full sync repairs it.
  const junk = new Transaction('ip', 'kube-proxy');
  junk.add({ kind: 'chain', name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 });
  junk.add({ kind: 'chain', name: 'endpoints-check' });
  junk.add({ kind: 'rule', chain: 'filter-prerouting', rule: 'ct state new jump endpoints-check' });
  junk.add({ kind: 'map', name: 'old-map', type: 'ipv4_addr : verdict' });
  junk.add({ kind: 'element', container: 'old-map', isMap: true, key: ['1.2.3.4'], value: ['goto endpoints-check'] });
  junk.flush({ kind: 'chain', name: 'services' });
  await both(execApplier({ prefix: inNs(a) }), fake).apply(junk);
  await check('after a foreign change');
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  await check('after the repairing full sync');
  t.notOk(Object.keys((await listed(a)).chains).includes('filter-prerouting'), 'the stale base chain is gone');
});
