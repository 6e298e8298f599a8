/**
 * nftables partial syncs are an optimisation of full syncs: after any
 * sequence of partial syncs, the Fake's table equals the table one full
 * sync of the same state gives in a fresh Fake. Checked over random change
 * sequences (the shared RandomCluster, plus a richer generator with every
 * feature: traffic policies, session affinity, source ranges, shared IPs,
 * local and remote, ready and terminating endpoints). The Fake is strict:
 * a chain or set deleted while referenced, or an element added twice with
 * two values, fails the transaction. The same property against the real
 * kernel is in test/e2e/nft-partial-sync.test.ts.
 */
import t from 'tap';
import type { Test } from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import type { EndpointSlice, Protocol, Service } from '../../src/agent/model/types.js';
import { NftablesBackend } from '../../src/backends/nftables/backend.js';
import { fakeApplier } from '../../src/backends/nftables/nft/applier.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { affinityPortSetName } from '../../src/backends/nftables/affinity.js';
import { renderFullSync } from '../../src/backends/nftables/render.js';
import type { NftRenderConfig } from '../../src/backends/nftables/render.js';
import { RandomCluster, rng } from '../helpers/random-cluster.js';
import { service, slice } from '../helpers/model.js';

const cfg: NftRenderConfig = { clusterCIDR: '10.244.0.0/16', masqueradeAll: false, masqueradeBit: 14, nodeName: 'node-1', nodeIP: '192.168.0.2' };
/** Upstream's layout for every port (per-endpoint chains and affinity sets). */
const upstreamCfg: NftRenderConfig = { ...cfg, layout: 'upstream' };

function fresh(s: ReturnType<ClusterStore['snapshot']>['snapshot'], c: NftRenderConfig = cfg): string {
  const f = new FakeNft();
  f.run(renderFullSync(s, c).tx);
  return f.dump('ip', 'kube-proxy');
}

/** A generator of every feature the renderer has. */
class FeatureCluster {
  private readonly services = new Map<string, Service>();
  private next = 1;
  readonly log: string[] = [];
  constructor(
    private readonly store: ClusterStore,
    private readonly rand: () => number,
  ) {}
  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }
  private chance(p: number): boolean {
    return this.rand() < p;
  }
  private ip(prefix: string, n = 12): string {
    return `${prefix}.${1 + Math.floor(this.rand() * n)}`;
  }
  step(): void {
    const names = [...this.services.keys()];
    const r = this.rand();
    if (names.length < 3 || r < 0.15) return this.add();
    const name = this.pick(names);
    if (r < 0.25) {
      this.services.delete(name);
      this.store.deleteService('ns', name);
      this.log.push(`delete ${name}`);
      return;
    }
    if (r < 0.65) return this.endpoints(name);
    return this.mutate(name);
  }
  private randomService(name: string, n: number): Service {
    const type = this.pick(['ClusterIP', 'NodePort', 'LoadBalancer'] as const);
    const protocol: Protocol = this.pick(['TCP', 'UDP', 'SCTP'] as const);
    const lb = type === 'LoadBalancer' ? [this.ip('198.51.100', 4)] : [];
    const twoPorts = this.chance(0.3);
    return service({
      name,
      type,
      clusterIPs: [`10.96.0.${n}`],
      loadBalancerIPs: lb,
      // A small pool: two services may claim the same external IP and port.
      externalIPs: this.chance(0.3) ? [this.ip('192.0.2', 3)] : [],
      loadBalancerSourceRanges: lb.length > 0 && this.chance(0.5) ? this.pick([['203.0.113.0/25'], ['192.168.0.0/24', '203.0.113.0/24']]) : [],
      externalTrafficPolicy: this.chance(0.4) ? 'Local' : 'Cluster',
      internalTrafficPolicy: this.chance(0.2) ? 'Local' : 'Cluster',
      sessionAffinity: this.chance(0.3) ? 'ClientIP' : 'None',
      sessionAffinityTimeoutSeconds: this.pick([10800, 60]),
      healthCheckNodePort: 0,
      ports: [
        { name: 'p', protocol, port: 80, nodePort: type === 'ClusterIP' ? 0 : 30000 + n, targetPort: 8080 },
        ...(twoPorts ? [{ name: 'q', protocol, port: 443, nodePort: type === 'ClusterIP' ? 0 : 31000 + n, targetPort: 8443 }] : []),
      ],
    });
  }
  private add(): void {
    const n = this.next++;
    const name = `s${n}`;
    const svc = this.randomService(name, n);
    this.services.set(name, svc);
    this.store.upsertService(svc);
    this.log.push(`add ${name} ${svc.type} eTP=${svc.externalTrafficPolicy} iTP=${svc.internalTrafficPolicy} aff=${svc.sessionAffinity}`);
    if (this.chance(0.8)) this.endpoints(name);
  }
  private mutate(name: string): void {
    const svc = this.services.get(name)!;
    const n = Number(name.slice(1));
    const fresh = this.randomService(name, n);
    // Change a few fields at a time, keeping the rest.
    const next: Service = { ...svc };
    const fields = ['type', 'externalIPs', 'loadBalancerSourceRanges', 'externalTrafficPolicy', 'internalTrafficPolicy', 'sessionAffinity', 'sessionAffinityTimeoutSeconds', 'ports'] as const;
    const f = this.pick(fields);
    (next as unknown as Record<string, unknown>)[f] = fresh[f];
    if (f === 'type' || f === 'ports') {
      next.type = fresh.type;
      next.loadBalancerIPs = fresh.loadBalancerIPs;
      next.ports = fresh.ports;
      next.loadBalancerSourceRanges = fresh.loadBalancerSourceRanges;
    }
    this.services.set(name, next);
    this.store.upsertService(next);
    this.log.push(`mutate ${name} ${f}`);
  }
  private endpoints(name: string): void {
    const svc = this.services.get(name)!;
    const count = Math.floor(this.rand() * 5);
    const eps = Array.from({ length: count }, () => {
      const ready = this.chance(0.8);
      return { ip: this.ip('10.244.1', 20), node: this.pick(['node-1', 'node-2']), ready, serving: ready || this.chance(0.5), terminating: !ready };
    });
    const sl: EndpointSlice = slice(name, eps, {
      ports: svc.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.targetPort as number })),
    });
    this.store.upsertSlice(sl);
    this.log.push(`endpoints ${name} ${eps.map((e) => `${e.ip}@${e.node}${e.ready ? '' : '(t)'}`).join(',')}`);
  }
}

async function property(
  t: Test,
  seeds: number,
  steps: number,
  make: (store: ClusterStore, seed: number) => { step(): void; log: string[] },
  c: NftRenderConfig = cfg,
): Promise<{ partial: number; ops: number }> {
  let partial = 0;
  let ops = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const store = new ClusterStore('node-1');
    const cluster = make(store, seed);
    for (let i = 0; i < 5; i++) cluster.step();
    const fake = new FakeNft();
    const backend = new NftablesBackend(fakeApplier(fake), c, { deferStaleChains: false });
    let s = store.snapshot();
    await backend.sync(s.snapshot, s.changes, { full: true });
    store.commit(s.changes);
    for (let step = 0; step < steps; step++) {
      cluster.step();
      s = store.snapshot();
      let r;
      try {
        r = await backend.sync(s.snapshot, s.changes, { full: false });
      } catch (err) {
        t.fail(`seed ${seed} step ${step}: ${(err as Error).message}\nafter: ${cluster.log.slice(-3).join('; ')}`);
        return { partial, ops };
      }
      store.commit(s.changes);
      if (r.full) t.fail('a partial sync turned full');
      partial++;
      ops += Object.values(r.rulesByTable).reduce((a, b) => a + b, 0);
      const got = fake.dump('ip', 'kube-proxy');
      const want = fresh(s.snapshot, c);
      if (got !== want) {
        t.equal(got, want, `seed ${seed} step ${step} after: ${cluster.log.slice(-3).join('; ')}`);
        return { partial, ops };
      }
    }
  }
  return { partial, ops };
}

t.test('random change sequences (RandomCluster): partial syncs end where one full sync would', async (t) => {
  const r = await property(t, 40, 25, (store, seed) => new RandomCluster(store, rng(seed)));
  t.equal(r.partial, 1000, '40 seeds x 25 steps, all partial');
});

t.test('random change sequences with every feature: partial syncs end where one full sync would', async (t) => {
  const r = await property(t, 60, 40, (store, seed) => new FeatureCluster(store, rng(1000 + seed)));
  t.equal(r.partial, 2400, '60 seeds x 40 steps, all partial');
});

t.test('the same in upstream\'s layout (layout: upstream)', async (t) => {
  const r = await property(t, 30, 40, (store, seed) => new FeatureCluster(store, rng(2000 + seed)), upstreamCfg);
  t.equal(r.partial, 1200, '30 seeds x 40 steps, all partial');
});

t.test('an endpoint change touches only that service: its endpoint elements, no chain', async (t) => {
  const store = new ClusterStore('node-1');
  for (let i = 1; i <= 50; i++) {
    store.upsertService(service({ name: `s${i}`, clusterIPs: [`10.96.0.${i}`] }));
    store.upsertSlice(slice(`s${i}`, [{ ip: `10.244.1.${i}` }, { ip: `10.244.2.${i}` }]));
  }
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  const full = await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);

  store.upsertSlice(slice('s7', [{ ip: '10.244.1.7' }, { ip: '10.244.3.7' }]));
  s = store.snapshot();
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  t.equal(r.full, false);
  t.equal(
    fake.applied.at(-1),
    [
      'delete element ip kube-proxy hairpin-endpoints { 10.244.2.7 . 10.244.2.7 }',
      'delete element ip kube-proxy service-endpoints-tcp { 10.96.0.7 . 80 . 1 }',
      'add element ip kube-proxy hairpin-endpoints { 10.244.3.7 . 10.244.3.7 }',
      'add element ip kube-proxy service-endpoints-tcp { 10.96.0.7 . 80 . 1 : 10.244.3.7 . 8080 }',
      '',
    ].join('\n'),
    'the swapped endpoint, nothing else',
  );
  t.ok(r.bytes < full.bytes / 10, `partial ${r.bytes} B vs full ${full.bytes} B`);
  t.equal(fake.lookup('ip', 'kube-proxy', 'service-ips', ['10.96.0.7', 'tcp', '80']), 'goto lb-internal-tcp-2');

  // A third endpoint: the service moves to the shared chain for 3, created with its first user.
  store.upsertSlice(slice('s8', [{ ip: '10.244.1.8' }, { ip: '10.244.2.8' }, { ip: '10.244.3.8' }]));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  const t8 = fake.applied.at(-1)!;
  t.match(t8, /^add chain ip kube-proxy lb-internal-tcp-3$/m, 'the chain for 3 endpoints appears');
  t.match(t8, /^add rule ip kube-proxy lb-internal-tcp-3 dnat ip to ip daddr \. tcp dport \. numgen random mod 3 map @service-endpoints-tcp$/m);
  t.notMatch(t8, /lb-internal-tcp-2/, 'the chain for 2 stays: others use it');
  t.equal(fake.lookup('ip', 'kube-proxy', 'service-ips', ['10.96.0.8', 'tcp', '80']), 'goto lb-internal-tcp-3');
  t.ok(t8.indexOf('add rule ip kube-proxy lb-internal-tcp-3') < t8.indexOf('add element ip kube-proxy service-ips'), 'the chain exists before the element pointing at it');

  // Its last user gone (no endpoint any more): the service moves to no-endpoint-services, the chain goes.
  store.upsertSlice(slice('s8', []));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  const t9 = fake.applied.at(-1)!;
  t.match(t9, /^delete element ip kube-proxy service-ips \{ 10\.96\.0\.8 \. tcp \. 80 \}$/m);
  t.match(t9, /^add element ip kube-proxy no-endpoint-services \{ 10\.96\.0\.8 \. tcp \. 80 comment "ns\/s8:http" : goto reject-chain \}$/m);
  t.match(t9, /^delete chain ip kube-proxy lb-internal-tcp-3$/m);
  t.ok(t9.indexOf('delete element ip kube-proxy service-ips') < t9.indexOf('delete chain'), 'the element pointing at the chain goes first');
  t.equal(fake.lookup('ip', 'kube-proxy', 'no-endpoint-services', ['10.96.0.8', 'tcp', '80']), 'goto reject-chain');
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(s.snapshot), 'the table equals a full sync');

  // Nothing changed: nothing applied.
  const before = fake.applied.length;
  s = store.snapshot();
  const none = await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(fake.applied.length, before, 'no nft call without changes');
  t.equal(none.bytes, 0);
});

/** 20 session-affinity services, each with two endpoints, fully synced through a backend on a Fake. */
async function affinityServicesSynced(c: NftRenderConfig): Promise<{ store: ClusterStore; fake: FakeNft; backend: NftablesBackend }> {
  const store = new ClusterStore('node-1');
  for (let i = 1; i <= 20; i++) {
    store.upsertService(service({ name: `s${i}`, clusterIPs: [`10.96.0.${i}`], sessionAffinity: 'ClientIP' }));
    store.upsertSlice(slice(`s${i}`, [{ ip: `10.244.1.${i}` }, { ip: `10.244.2.${i}` }]));
  }
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), c, { deferStaleChains: false });
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  return { store, fake, backend };
}

/** Swaps s7's second endpoint (10.244.2.7 → 10.244.3.7) in a partial sync; the snapshot it synced and the text nft got. */
async function swapS7Endpoint(store: ClusterStore, fake: FakeNft, backend: NftablesBackend): Promise<{ snapshot: ReturnType<ClusterStore['snapshot']>['snapshot']; text: string }> {
  store.upsertSlice(slice('s7', [{ ip: '10.244.1.7' }, { ip: '10.244.3.7' }]));
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  return { snapshot: s.snapshot, text: fake.applied.at(-1)! };
}

t.test('an endpoint change of a session-affinity service rewrites its chain, and keeps its affinity set', async (t) => {
  const { store, fake, backend } = await affinityServicesSynced(cfg);
  const set7 = fake.table('ip', 'kube-proxy')!.sets.get(affinityPortSetName({ namespace: 'ns', name: 's7', portName: 'http', protocol: 'TCP' }))!;
  t.ok(set7, 'one affinity set for the port');
  const { snapshot, text } = await swapS7Endpoint(store, fake, backend);
  t.notMatch(text, /ns\/s8\//, 'no other service touched');
  t.notMatch(text, /(add|delete) set/, 'the affinity set stays (its entries too)');
  t.match(text, /^flush chain ip kube-proxy service-\w{8}-ns\/s7\/tcp\/http$/m, 'the service chain is rewritten');
  t.match(text, /dnat to 10\.244\.3\.7:8080$/m, 'with the new endpoint');
  t.notMatch(text, /chain ip kube-proxy endpoint-/, 'no endpoint chain');
  t.equal(fake.table('ip', 'kube-proxy')!.sets.get(set7.name)!.seq, set7.seq, 'the same set object');
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(snapshot), 'the table equals a full sync');
});

t.test('upstream layout: an endpoint change of a session-affinity service touches only its chains', async (t) => {
  const { store, fake, backend } = await affinityServicesSynced(upstreamCfg);
  const { snapshot, text } = await swapS7Endpoint(store, fake, backend);
  t.notMatch(text, /ns\/s8\//, 'no other service touched');
  t.notMatch(text, /element ip kube-proxy service-ips/, 'its dispatch element stays');
  t.match(text, /^add chain ip kube-proxy endpoint-\w{8}-ns\/s7\/tcp\/http__10\.244\.3\.7\/8080$/m, 'the new endpoint chain');
  t.match(text, /^add set ip kube-proxy affinity-\w{8}-ns\/s7\/tcp\/http__10\.244\.3\.7\/8080 /m, 'its affinity set');
  t.match(text, /^flush chain ip kube-proxy service-\w{8}-ns\/s7\/tcp\/http$/m, 'the service chain is rewritten');
  t.match(text, /^delete chain ip kube-proxy endpoint-\w{8}-ns\/s7\/tcp\/http__10\.244\.2\.7\/8080$/m, 'the removed endpoint chain is deleted');
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(snapshot, upstreamCfg), 'the table equals a full sync');
});

t.test('a failed partial sync makes the next one full, and that one repairs everything', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.upsertSlice(slice('a', [{ ip: '10.244.1.3' }]));
  s = store.snapshot();
  fake.failNext = 1;
  await t.rejects(backend.sync(s.snapshot, s.changes, { full: false }));
  // The runner commits nothing on failure; the caller asks for a full sync (and even if it did not, the backend would).
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(r.full, true, 'forced full');
  store.commit(s.changes);
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(s.snapshot));
});

t.test('a full sync over a table someone changed: stale chains, sets and maps go, ours come back', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a', sessionAffinity: 'ClientIP' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  // Junk in our table (as an older kube-proxy layout would leave), and one of our chains flushed.
  const { Transaction } = await import('../../src/backends/nftables/nft/transaction.js');
  const junk = new Transaction('ip', 'kube-proxy');
  junk.add({ kind: 'chain', name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 });
  junk.add({ kind: 'chain', name: 'endpoints-check' });
  junk.add({ kind: 'rule', chain: 'filter-prerouting', rule: 'ct state new jump endpoints-check' });
  junk.add({ kind: 'set', name: 'affinity-OLD-ns/x/tcp/__1.2.3.4/80', type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeout: 5 });
  junk.add({ kind: 'rule', chain: 'endpoints-check', rule: 'ip saddr @affinity-OLD-ns/x/tcp/__1.2.3.4/80 drop' });
  junk.add({ kind: 'map', name: 'old-map', type: 'ipv4_addr : verdict' });
  junk.add({ kind: 'element', container: 'old-map', isMap: true, key: ['1.2.3.4'], value: ['goto endpoints-check'] });
  junk.flush({ kind: 'chain', name: 'services' });
  fake.run(junk);
  // The affinity timeout changes too: the set is re-created.
  store.upsertService(service({ name: 'a', sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60 }));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(s.snapshot));
  t.match(fake.applied.at(-1), /^delete chain ip kube-proxy filter-prerouting$/m);
  t.match(fake.applied.at(-1), /^delete map ip kube-proxy old-map$/m);
});

t.test('deferred deletion (kernels before 6.2): stale chains are flushed, then deleted a second later in their own transaction', async (t) => {
  let now = 0;
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a', sessionAffinity: 'ClientIP' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), upstreamCfg, { deferStaleChains: true, now: () => now });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.upsertSlice(slice('a', [{ ip: '10.244.1.3' }]));
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  store.commit(s.changes);
  const old = fake.chainNames('ip', 'kube-proxy').find((c) => c.includes('10.244.1.2'))!;
  t.ok(old, 'the old endpoint chain is still there');
  t.same(fake.rules('ip', 'kube-proxy', old), [], 'but empty');
  t.notMatch(fake.applied.at(-1), /delete chain/);
  now = 500;
  s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: false });
  t.ok(fake.chainNames('ip', 'kube-proxy').includes(old), 'not yet: less than a second');
  now = 1500;
  await backend.sync(s.snapshot, s.changes, { full: false });
  t.notOk(fake.chainNames('ip', 'kube-proxy').includes(old), 'deleted');
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(s.snapshot, upstreamCfg), 'and the table equals a full sync');
});

t.test('a config change (node zone, nodePortAddresses) makes the sync full', async (t) => {
  const store = new ClusterStore('node-1');
  store.setNode({ name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'a' }, addresses: ['192.168.0.2'], podCIDRs: [] });
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.setNode({ name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'b' }, addresses: ['192.168.0.2'], podCIDRs: [] });
  s = store.snapshot();
  t.equal((await backend.sync(s.snapshot, s.changes, { full: false })).full, true);
});

t.test('new ServiceCIDRs: a partial sync rewrites cluster-ips-check only', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  backend.setServiceCIDRs(['10.96.0.0/16', 'fd00::/108']);
  s = store.snapshot();
  const r = await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(r.full, false);
  t.equal(fake.applied.at(-1), [
    'flush chain ip kube-proxy cluster-ips-check',
    'add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    'add rule ip kube-proxy cluster-ips-check ip daddr { 10.96.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"',
    '',
  ].join('\n'));
  t.equal(fake.dump('ip', 'kube-proxy'), fresh(s.snapshot, { ...cfg, serviceCIDRs: ['10.96.0.0/16'] }));
  const before = fake.applied.length;
  await backend.sync(s.snapshot, s.changes, { full: false });
  t.equal(fake.applied.length, before, 'once');
});

t.test('canaryIntact: false once our table is gone, true again after a full sync', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  t.equal(await backend.canaryIntact(), true, 'before the first sync');
  const s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  t.equal(await backend.canaryIntact(), true);
  const { renderCleanup } = await import('../../src/backends/nftables/render.js');
  fake.run(renderCleanup({ family: 'IPv4' }));
  t.equal(await backend.canaryIntact(), false);
  await backend.sync(s.snapshot, s.changes, { full: true });
  t.equal(await backend.canaryIntact(), true);
});

t.test('plan (for --dry-run) reads the table but writes nothing', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  const fake = new FakeNft();
  const backend = new NftablesBackend(fakeApplier(fake), cfg, { deferStaleChains: false });
  let s = store.snapshot();
  await backend.sync(s.snapshot, s.changes, { full: true });
  store.commit(s.changes);
  store.deleteService('ns', 'a');
  s = store.snapshot();
  const before = fake.dump('ip', 'kube-proxy');
  const { text } = await backend.plan(s.snapshot);
  t.equal(fake.dump('ip', 'kube-proxy'), before, 'nothing written');
  t.match(text, /^delete chain ip kube-proxy lb-internal-tcp-1$/m, 'the stale chain would go');
});
