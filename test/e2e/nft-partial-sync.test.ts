/**
 * The nftables backend against the real kernel, in throwaway network
 * namespaces: nft accepts its full and partial transactions (IPv4 and
 * IPv6); random change sequences applied as partial syncs in one namespace
 * end with the same table as a full sync of the same state in another; a
 * refused transaction changes nothing and says which line; cleanup removes
 * our tables and nothing else. Needs root.
 */
import t from 'tap';
import { execa } from 'execa';
import { ClusterStore } from '../../src/agent/model/store.js';
import { cleanupNftables, NftablesBackend } from '../../src/backends/nftables/backend.js';
import { execApplier } from '../../src/backends/nftables/nft/applier.js';
import { diffTables, normalizeTable } from '../../src/backends/nftables/nft/normalize.js';
import { execNft, NftError } from '../../src/backends/nftables/nft/run.js';
import { Transaction } from '../../src/backends/nftables/nft/transaction.js';
import type { NftRenderConfig } from '../../src/backends/nftables/render.js';
import { RandomCluster, rng } from '../helpers/random-cluster.js';
import { service, slice } from '../helpers/model.js';
import type { Service } from '../../src/agent/model/types.js';

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
const nftIn = (ns: string) => execNft({ prefix: inNs(ns) });
const cfg: NftRenderConfig = { clusterCIDR: '10.244.0.0/16', masqueradeAll: false, masqueradeBit: 14, nodeName: 'node-1' };

async function listed(ns: string, family = 'ip'): Promise<ReturnType<typeof normalizeTable>> {
  return normalizeTable(await nftIn(ns).json(['list', 'table', family, 'kube-proxy']));
}

t.test('partial syncs equal a full sync, in the kernel', async (t) => {
  for (const seed of [11, 22, 33]) {
    const a = await netns(`a${seed}`);
    const b = await netns(`b${seed}`);
    const store = new ClusterStore('node-1');
    const cluster = new RandomCluster(store, rng(seed));
    for (let i = 0; i < 6; i++) cluster.step();
    const partial = new NftablesBackend(execApplier({ prefix: inNs(a) }), cfg, { deferStaleChains: false });
    let s = store.snapshot();
    await partial.sync(s.snapshot, s.changes, { full: true });
    store.commit(s.changes);
    let partials = 0;
    for (let step = 1; step <= 20; step++) {
      cluster.step();
      s = store.snapshot();
      const r = await partial.sync(s.snapshot, s.changes, { full: false });
      store.commit(s.changes);
      if (!r.full) partials++;
      if (step % 5 === 0) {
        // A full sync of the same state, by a new backend, into a namespace that has seen other states before.
        const full = new NftablesBackend(execApplier({ prefix: inNs(b) }), cfg, { deferStaleChains: false });
        await full.sync(s.snapshot, s.changes, { full: true });
        t.equal(diffTables(await listed(a), await listed(b), ['partial', 'full']), '', `seed ${seed} step ${step}: partial == full`);
      }
    }
    t.equal(partials, 20, 'every step was a partial sync');
  }
});

/** Random churn over every feature (a compact sibling of the unit test's FeatureCluster). */
function featureChurn(store: ClusterStore, rand: () => number): { step(): void; log: string[] } {
  const log: string[] = [];
  const live = new Map<string, Service>();
  let next = 1;
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const endpoints = (name: string): void => {
    const svc = live.get(name)!;
    const eps = Array.from({ length: Math.floor(rand() * 5) }, () => {
      const ready = rand() < 0.8;
      return { ip: `10.244.1.${1 + Math.floor(rand() * 20)}`, node: pick(['node-1', 'node-2']), ready, serving: ready || rand() < 0.5, terminating: !ready };
    });
    store.upsertSlice(slice(name, eps, { ports: svc.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: 8080 })) }));
    log.push(`endpoints ${name} ${eps.length}`);
  };
  const make = (name: string, n: number): Service => {
    const type = pick(['ClusterIP', 'NodePort', 'LoadBalancer'] as const);
    const protocol = pick(['TCP', 'UDP', 'SCTP'] as const);
    const lb = type === 'LoadBalancer' ? [`198.51.100.${1 + Math.floor(rand() * 4)}`] : [];
    return service({
      name,
      type,
      clusterIPs: [`10.96.0.${n}`],
      loadBalancerIPs: lb,
      externalIPs: rand() < 0.3 ? [`192.0.2.${1 + Math.floor(rand() * 3)}`] : [],
      loadBalancerSourceRanges: lb.length > 0 && rand() < 0.5 ? ['203.0.113.0/25'] : [],
      externalTrafficPolicy: rand() < 0.4 ? 'Local' : 'Cluster',
      internalTrafficPolicy: rand() < 0.2 ? 'Local' : 'Cluster',
      sessionAffinity: rand() < 0.3 ? 'ClientIP' : 'None',
      sessionAffinityTimeoutSeconds: pick([10800, 60]),
      ports: [
        { name: 'p', protocol, port: 80, nodePort: type === 'ClusterIP' ? 0 : 30000 + n, targetPort: 8080 },
        ...(rand() < 0.3 ? [{ name: 'q', protocol, port: 443, nodePort: type === 'ClusterIP' ? 0 : 31000 + n, targetPort: 8080 }] : []),
      ],
    });
  };
  return {
    log,
    step() {
      const names = [...live.keys()];
      const r = rand();
      if (names.length < 3 || r < 0.15) {
        const n = next++;
        const svc = make(`s${n}`, n);
        live.set(svc.name, svc);
        store.upsertService(svc);
        log.push(`add ${svc.name}`);
        if (rand() < 0.8) endpoints(svc.name);
        return;
      }
      const name = pick(names);
      if (r < 0.25) {
        live.delete(name);
        store.deleteService('ns', name);
        log.push(`delete ${name}`);
      } else if (r < 0.65) endpoints(name);
      else {
        const svc = make(name, Number(name.slice(1)));
        live.set(name, svc);
        store.upsertService(svc);
        log.push(`replace ${name}`);
      }
    },
  };
}

t.test('partial syncs equal a full sync, in the kernel, with every feature', async (t) => {
  for (const seed of [101, 202]) {
    const a = await netns(`fa${seed}`);
    const b = await netns(`fb${seed}`);
    const store = new ClusterStore('node-1');
    const churn = featureChurn(store, rng(seed));
    for (let i = 0; i < 6; i++) churn.step();
    const fcfg: NftRenderConfig = { ...cfg, nodeIP: '192.168.0.2', serviceCIDRs: ['10.96.0.0/16'] };
    const partial = new NftablesBackend(execApplier({ prefix: inNs(a) }), fcfg, { deferStaleChains: false });
    let s = store.snapshot();
    await partial.sync(s.snapshot, s.changes, { full: true });
    store.commit(s.changes);
    for (let step = 1; step <= 30; step++) {
      churn.step();
      s = store.snapshot();
      const r = await partial.sync(s.snapshot, s.changes, { full: false });
      store.commit(s.changes);
      t.equal(r.full, false);
      if (step % 10 === 0) {
        await new NftablesBackend(execApplier({ prefix: inNs(b) }), fcfg, { deferStaleChains: false }).sync(s.snapshot, s.changes, { full: true });
        t.equal(diffTables(await listed(a), await listed(b), ['partial', 'full']), '', `seed ${seed} step ${step}: partial == full (${churn.log.slice(-2).join('; ')})`);
      }
    }
  }
});

t.test('IPv6: the ip6 table is accepted, full and partial', async (t) => {
  const ns = await netns('v6');
  const store = new ClusterStore('node-1', 'IPv6');
  store.upsertService(
    service({
      name: 'v6',
      type: 'LoadBalancer',
      clusterIPs: ['fd00:10:96::10'],
      loadBalancerIPs: ['2001:db8::10'],
      loadBalancerSourceRanges: ['2001:db8:1::/48'],
      sessionAffinity: 'ClientIP',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }],
    }),
  );
  store.upsertSlice({ ...slice('v6', [{ ip: 'fd00:10:244::5' }, { ip: 'fd00:10:244::6', node: 'node-2' }]), addressType: 'IPv6' });
  const v6cfg: NftRenderConfig = { ...cfg, family: 'IPv6', clusterCIDR: 'fd00:10:244::/64', serviceCIDRs: ['fd00:10:96::/112'], nodePortAddresses: ['2001:db8::2'] };
  const backend = new NftablesBackend(execApplier({ prefix: inNs(ns) }), v6cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.upsertSlice({ ...slice('v6', [{ ip: 'fd00:10:244::7' }]), addressType: 'IPv6' });
  s = store.snapshot();
  t.equal((await backend.sync(s.snapshot, s.changes, { full: false })).full, false);
  const tbl = await listed(ns, 'ip6');
  // (Session affinity: the endpoints are inline in the service chain, its set keyed by client and endpoint id.)
  const text = JSON.stringify(tbl);
  t.match(text, /fd00:10:244::7/, 'the new endpoint');
  t.notMatch(text, /fd00:10:244::5/, 'the old one is gone');
  t.ok(Object.keys(tbl.sets).some((n) => n.startsWith('affinity-') && n.endsWith('ns/v6/tcp/http')), 'the port\'s affinity set');
});

t.test('a refused transaction changes nothing and names the failing line', async (t) => {
  const ns = await netns('err');
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const backend = new NftablesBackend(execApplier({ prefix: inNs(ns) }), cfg, { deferStaleChains: false });
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  const before = await listed(ns);
  const bad = new Transaction('ip', 'kube-proxy');
  bad.add({ kind: 'chain', name: 'fresh' });
  bad.add({ kind: 'element', container: 'service-ips', isMap: true, key: ['10.96.0.10', 'tcp', '80'], value: ['drop'] });
  const err = await execApplier({ prefix: inNs(ns) }).apply(bad).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof NftError, 'an NftError');
  t.equal((err as NftError).line, 2);
  t.match((err as NftError).message, /File exists at input line 2: add element ip kube-proxy service-ips/);
  t.equal(diffTables(before, await listed(ns)), '', 'the table is unchanged');
});

t.test('cleanup removes our tables and leaves every other table alone', async (t) => {
  const ns = await netns('clean');
  await nftIn(ns).run(
    [
      'add table inet filter',
      'add chain inet filter input { type filter hook input priority 0 ; }',
      'add rule inet filter input tcp dport 22 accept',
      'add table ip nat',
      'add chain ip nat kube-proxy-lookalike',
      'add table ip6 kube-proxy',
      '',
    ].join('\n'),
  );
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  const backend = new NftablesBackend(execApplier({ prefix: inNs(ns) }), cfg, { deferStaleChains: false });
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  const tables = async (): Promise<string[]> =>
    (await nftIn(ns).json(['list', 'tables'])).nftables
      .map((o) => o['table'] as { family: string; name: string } | undefined)
      .filter((x) => x !== undefined)
      .map((x) => `${x.family} ${x.name}`)
      .sort();
  t.same(await tables(), ['inet filter', 'ip kube-proxy', 'ip nat', 'ip6 kube-proxy']);
  await backend.cleanup();
  t.same(await tables(), ['inet filter', 'ip nat', 'ip6 kube-proxy'], 'IPv4 backend: only ip kube-proxy gone');
  await backend.cleanup();
  t.pass('cleanup again: no error');
  await cleanupNftables(execApplier({ prefix: inNs(ns) }));
  t.same(await tables(), ['inet filter', 'ip nat'], 'both families gone');
  const rules = normalizeTable(await nftIn(ns).json(['list', 'table', 'inet', 'filter']));
  t.equal(Object.values(rules.rules).flat().length, 1, 'the other table keeps its rule');
});

t.test('canaryIntact notices `nft flush ruleset`, and a full sync repairs it', async (t) => {
  const ns = await netns('canary');
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const backend = new NftablesBackend(execApplier({ prefix: inNs(ns) }), cfg, { deferStaleChains: false });
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  t.equal(await backend.canaryIntact(), true);
  await execa('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
  t.equal(await backend.canaryIntact(), false, 'gone');
  await execa('ip', ['netns', 'exec', ns, 'nft', 'add table ip kube-proxy; add set ip kube-proxy cluster-ips { type ipv4_addr ; }']);
  t.equal(await backend.canaryIntact(), false, 're-created by someone else: another handle');
  await backend.sync(s.snapshot, s.changes, { full: true });
  t.equal(await backend.canaryIntact(), true, 'repaired');
  t.ok(Object.keys((await listed(ns)).chains).some((c) => c.startsWith('service-')), 'our chains are back');
});
