/**
 * The agent in nftables mode, with an in-memory nft (FakeNft) and iptables
 * (fakeIptables) injected: syncs reach the nftables tables of both families,
 * changes are partial syncs, a refused transaction is retried in full,
 * starting removes our iptables rules, --cleanup removes both modes' rules.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOneShot, startAgent, StartupError } from '../../src/agent/agent.js';
import { memoryLogger } from '../../src/agent/log.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { fakeApplier } from '../../src/backends/nftables/nft/applier.js';
import type { NftApplier } from '../../src/backends/nftables/nft/applier.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { NftError } from '../../src/backends/nftables/nft/run.js';
import { renderCleanup } from '../../src/backends/nftables/render.js';
import { fakeIptables } from '../helpers/fake-iptables.js';

const svcYaml = (name: string, ips: string[]): string => `apiVersion: v1
kind: Service
metadata: { namespace: ns, name: ${name} }
spec: { clusterIPs: [${ips.map((ip) => `"${ip}"`).join(', ')}], ipFamilies: [${ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')).join(', ')}], ipFamilyPolicy: ${ips.length > 1 ? 'RequireDualStack' : 'SingleStack'}, ports: [{ name: http, port: 80 }] }
`;
const sliceYaml = (name: string, ips: string[], family: 'IPv4' | 'IPv6' = 'IPv4'): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { namespace: ns, name: ${name}-${family.toLowerCase()}, labels: { kubernetes.io/service-name: ${name} } }
addressType: ${family}
ports: [{ name: http, port: 8080 }]
endpoints: [${ips.map((ip) => `{ addresses: ["${ip}"] }`).join(', ')}]
`;

function options(dir: string, over: Partial<AgentOptions> = {}): AgentOptions {
  return {
    proxyMode: 'nftables',
    manifests: dir,
    hostnameOverride: 'node-1',
    clusterCIDR: '10.244.0.0/16',
    masqueradeAll: false,
    masqueradeBit: 14,
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 50,
    nodePortAddresses: [],
    localhostNodePorts: true,
    healthzBindAddress: '',
    metricsBindAddress: '',
    once: false,
    dryRun: false,
    cleanup: false,
    verbosity: 4,
    ...over,
  };
}

type Recording = NftApplier & { texts: string[]; failNext: number; lists: number };

/** An applier over the fake that records each transaction's text and can refuse the next ones. */
function recording(fake: FakeNft): Recording {
  const inner = fakeApplier(fake);
  const r: Recording = {
    texts: [],
    failNext: 0,
    lists: 0,
    async apply(tx) {
      if (tx.isEmpty) return;
      if (r.failNext > 0) {
        r.failNext--;
        throw new NftError('nft -f failed: Could not process rule: No such file or directory at input line 3: add rule ip kube-proxy x', '', 3);
      }
      r.texts.push(tx.toText());
      await inner.apply(tx);
    },
    list: (f, tb) => {
      r.lists++;
      return inner.list(f, tb);
    },
    setHandle: (f, tb, s) => inner.setHandle(f, tb, s),
  };
  return r;
}

const T4 = ['ip', 'kube-proxy'] as const;
const T6 = ['ip6', 'kube-proxy'] as const;

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 750; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const web = (v4eps: string[]): string =>
  `${svcYaml('web', ['10.96.0.10', 'fd00:96::10'])}---\n${sliceYaml('web', v4eps)}---\n${sliceYaml('web', ['fd00:244::2'], 'IPv6')}`;

t.test('both families are programmed; a change is a partial sync of that service only', async (t) => {
  const dir = t.testdir({ 'web.yaml': web(['10.244.1.2']), 'db.yaml': `${svcYaml('db', ['10.96.0.20'])}---\n${sliceYaml('db', ['10.244.1.9'])}` });
  const fake = new FakeNft();
  const nft = recording(fake);
  const agent = await startAgent(options(dir), { log: memoryLogger(4), out: () => undefined, nft });
  t.teardown(() => agent.stop());
  await agent.ready;
  t.match(fake.lookup(...T4, 'service-ips', ['10.96.0.10', 'tcp', '80']), 'goto lb-internal-tcp-1', 'IPv4 ClusterIP in the service-ips map');
  t.match(fake.lookup(...T6, 'service-ips', ['fd00:96::10', 'tcp', '80']), 'goto lb-internal-tcp-1', 'IPv6 ClusterIP in the ip6 table');
  const before = nft.texts.length;
  const listsBefore = nft.lists;

  await writeFile(join(dir, 'web.yaml'), web(['10.244.1.2', '10.244.1.3']));
  await until(() => nft.texts.slice(before).some((x) => x.includes('10.244.1.3')), 'the new endpoint to be applied');
  const partial = nft.texts.slice(before).find((x) => x.includes('10.244.1.3'))!;
  t.notMatch(partial, /10\.244\.1\.9/, 'the unchanged service is not rewritten');
  t.notMatch(partial, /add table/, 'no full rewrite');
  t.same(fake.lookup(...T4, 'service-endpoints-tcp', ['10.96.0.10', '80', '1']), '10.244.1.3 . 8080', 'the new endpoint is in the table');
  t.equal(nft.lists, listsBefore, 'a partial sync never lists the table: it works from what the agent wrote');
  const metrics = await agent.metrics.registry.metrics();
  t.match(metrics, /kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 0/, 'nftables-mode metrics');
  t.notMatch(metrics, /iptables_restore_failures/, 'no iptables-only metrics');
});

t.test('a refused transaction keeps the old rules, is counted, and is retried in full', async (t) => {
  const dir = t.testdir({ 'web.yaml': `${svcYaml('web', ['10.96.0.10'])}---\n${sliceYaml('web', ['10.244.1.2'])}` });
  const fake = new FakeNft();
  const nft = recording(fake);
  nft.failNext = 1;
  const log = memoryLogger(4);
  const agent = await startAgent(options(dir), { log, out: () => undefined, nft });
  t.teardown(() => agent.stop());
  await agent.ready;
  t.ok(log.lines.some((l) => / E "sync failed; the previous rules stay in place".*input line 3/.test(l)), "error logged with nft's message");
  t.match(fake.lookup(...T4, 'service-ips', ['10.96.0.10', 'tcp', '80']), 'goto lb-internal-tcp-1', 'the retry applied');
  t.match(await agent.metrics.registry.metrics(), /kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 1/);
});

t.test('starting in nftables mode removes our iptables rules and back; --cleanup removes both modes', async (t) => {
  const dir = t.testdir({ 'web.yaml': `${svcYaml('web', ['10.96.0.10'])}---\n${sliceYaml('web', ['10.244.1.2'])}` });
  const iptables = fakeIptables();
  const fake = new FakeNft();
  const nft = recording(fake);
  const deps = { log: memoryLogger(), out: () => undefined, nft, iptables };
  t.equal(await runOneShot(options(dir, { proxyMode: 'iptables', once: true }), deps), 0);
  t.match(iptables.current(), /KUBE-SERVICES/, 'iptables mode wrote its chains');
  // The fake's iptables-save answers what it is told: the kernel's state now.
  iptables.saved = iptables.current();

  t.equal(await runOneShot(options(dir, { once: true }), deps), 0);
  t.notMatch(iptables.current(), /KUBE-SERVICES|KUBE-SVC-/, 'our iptables chains are gone');
  t.ok(fake.table(...T4), 'the nftables table is there');

  t.equal(await runOneShot(options(dir, { proxyMode: 'iptables', once: true }), deps), 0);
  t.notOk(fake.table(...T4), 'starting in iptables mode deleted the ip kube-proxy table');
  t.notOk(fake.table(...T6), 'and the ip6 one');
  t.match(iptables.current(), /KUBE-SERVICES/);

  iptables.saved = iptables.current();
  await runOneShot(options(dir, { once: true }), deps);
  iptables.saved = iptables.current();
  await runOneShot(options(dir, { proxyMode: 'iptables', once: true }), deps);
  iptables.saved = iptables.current();
  t.match(iptables.saved, /KUBE-SERVICES/);
  await runOneShot(options(dir, { once: true, cleanup: false }), { ...deps, iptables: fakeIptables() });
  t.ok(fake.table(...T4));
  t.equal(await runOneShot(options(dir, { cleanup: true }), deps), 0);
  t.notOk(fake.table(...T4), '--cleanup deleted the nftables tables');
  t.notMatch(iptables.current(), /KUBE-SERVICES|KUBE-SVC-/, '--cleanup left no iptables chain of ours');
});

t.test('--dry-run prints the nft input of both families and applies nothing', async (t) => {
  const dir = t.testdir({ 'web.yaml': web(['10.244.1.2']) });
  const nft = recording(new FakeNft());
  let printed = '';
  t.equal(await runOneShot(options(dir, { dryRun: true }), { log: memoryLogger(), out: (s) => (printed += s), nft }), 0);
  t.same(nft.texts, [], 'nothing applied');
  t.match(printed, /# nft -f input \(table ip kube-proxy\)/);
  t.match(printed, /add element ip kube-proxy service-ips \{ 10\.96\.0\.10 \. tcp \. 80/);
  t.match(printed, /add element ip6 kube-proxy service-ips \{ fd00:96::10 \. tcp \. 80/);
});

t.test('nftables mode refuses to start without a working nft', async (t) => {
  const dir = t.testdir({ 'web.yaml': svcYaml('web', ['10.96.0.10']) });
  const broken: NftApplier = {
    apply: async () => undefined,
    list: async () => ({ exists: false, chains: new Map(), sets: new Map(), maps: new Map() }),
    setHandle: async () => {
      throw new NftError('nft -j -t list set ip kube-proxy cluster-ips failed: command not found (install nftables)', '');
    },
  };
  await t.rejects(startAgent(options(dir), { log: memoryLogger(), out: () => undefined, nft: broken }), { name: 'StartupError', message: /nftables mode needs a working nft: .*install nftables/ });
  await t.rejects(runOneShot(options(dir, { once: true }), { log: memoryLogger(), out: () => undefined, nft: broken }), StartupError);
});

t.test('a deleted table is noticed by the canary and rewritten in full', async (t) => {
  const dir = t.testdir({ 'web.yaml': `${svcYaml('web', ['10.96.0.10'])}---\n${sliceYaml('web', ['10.244.1.2'])}` });
  const fake = new FakeNft();
  const nft = recording(fake);
  const log = memoryLogger(4);
  const agent = await startAgent(options(dir, { syncPeriodMs: 200 }), { log, out: () => undefined, nft });
  t.teardown(() => agent.stop());
  await agent.ready;
  await nft.apply(renderCleanup({ family: 'IPv4' }));
  t.notOk(fake.table(...T4));
  await until(() => fake.table(...T4) !== undefined, 'the table to be rewritten');
  t.ok(log.lines.some((l) => /our nftables rules were flushed or deleted by someone else/.test(l)));
  t.equal(fake.lookup(...T4, 'service-ips', ['10.96.0.10', 'tcp', '80']), 'goto lb-internal-tcp-1');
});
