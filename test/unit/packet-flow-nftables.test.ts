/**
 * The behaviour table (test/helpers/packet-flow-cases.ts), run against the
 * nftables mode: each cluster goes through the nftables backend on the
 * in-memory FakeNft, and the nftables tracer parses
 *   - the transaction texts the backend hands to its applier (exactly what
 *     the real applier pipes to `nft -f -`) of a full sync,
 *   - what the Fake's table holds afterwards (its dump),
 *   - the same two after a full sync of the services without endpoints
 *     followed by a partial sync adding the EndpointSlices;
 * every packet must go where the table says, in every form.
 * test/unit/packet-flow-iptables.test.ts runs the same table against the
 * iptables mode.
 */
import t from 'tap';
import { DEFAULT_RENDER_CONFIG } from '../../src/backends/iptables/render.js';
import { NftablesBackend } from '../../src/backends/nftables/backend.js';
import { nftConfigFrom, nftFamily } from '../../src/backends/nftables/config.js';
import type { NftRenderConfig } from '../../src/backends/nftables/config.js';
import { endpointId } from '../../src/backends/nftables/affinity.js';
import { fakeApplier } from '../../src/backends/nftables/nft/applier.js';
import type { NftApplier } from '../../src/backends/nftables/nft/applier.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { renderFullSync } from '../../src/backends/nftables/render.js';
import { TABLE } from '../../src/backends/nftables/names.js';
import { parseNftRuleset, traceNftPacket } from '../../src/trace/nftables/index.js';
import { CLIENT, from, NODE_IP, OTHER_POD, OUTSIDER, POD_A, POD_B, SCENARIOS } from '../helpers/packet-flow-cases.js';
import { service, slice } from '../helpers/model.js';
import type { Scenario } from '../helpers/packet-flow-cases.js';
import { checkResult, checkTableCanFail, renderSettings, runScenarios, scenario, scenarioSnapshot, scenarioStore } from '../helpers/packet-flow-check.js';
import type { Forms, Tracer } from '../helpers/packet-flow-check.js';

/** An admin's own table whose base chains drop what they do not accept (an accept in kube-proxy's table does not end them). */
const hostDrop = (family: 'ip' | 'ip6' | 'inet', hooks: readonly string[] = []): string =>
  hooks.length === 0
    ? ''
    : `add table ${family} host-firewall\n${hooks.map((h) => `add chain ${family} host-firewall ${h} { type filter hook ${h} priority 0 ; policy drop ; }\n`).join('')}`;

function nftConfig(s: Scenario): NftRenderConfig {
  return nftConfigFrom({ ...DEFAULT_RENDER_CONFIG, ...renderSettings(s.config) }, s.config.serviceCIDRs);
}

interface Synced {
  cfg: NftRenderConfig;
  fake: FakeNft;
  /** The texts the backend handed to nft, in order. */
  sent: string[];
}

function recording(cfg: NftRenderConfig): Synced & { backend: NftablesBackend } {
  const fake = new FakeNft();
  const inner = fakeApplier(fake);
  const sent: string[] = [];
  // As realApplier: an empty transaction is not run; any other is handed to `nft -f -` as tx.toText().
  const applier: NftApplier = {
    ...inner,
    async apply(tx) {
      if (!tx.isEmpty) sent.push(tx.toText());
      await inner.apply(tx);
    },
  };
  return { cfg, fake, sent, backend: new NftablesBackend(applier, cfg, { deferStaleChains: false }) };
}

/** A full sync of the scenario through the backend, recording the texts a real nft would be given. */
async function sync(s: Scenario, layout?: NftRenderConfig['layout']): Promise<Synced> {
  const r = recording(layout === undefined ? nftConfig(s) : { ...nftConfig(s), layout });
  const { snapshot, changes } = scenarioSnapshot(s);
  await r.backend.sync(snapshot, changes, { full: true });
  return r;
}

/**
 * The scenario reached by a partial sync: a full sync of its services
 * without endpoints, then the EndpointSlices arrive and a partial sync
 * writes only what changed.
 */
async function syncPartially(s: Scenario, layout?: NftRenderConfig['layout']): Promise<Synced> {
  const r = recording(layout === undefined ? nftConfig(s) : { ...nftConfig(s), layout });
  const store = scenarioStore(s, false);
  const first = store.snapshot();
  await r.backend.sync(first.snapshot, first.changes, { full: true });
  store.commit(first.changes);
  for (const sl of s.slices) store.upsertSlice(sl);
  const second = store.snapshot();
  const before = r.sent.length;
  await r.backend.sync(second.snapshot, second.changes, { full: false });
  const last = r.sent.at(-1) ?? '';
  if (r.sent.length !== before + 1 || !/^add rule /m.test(last) || /^add table /m.test(last)) {
    throw new Error(`${s.name}: the second sync was not one partial transaction`);
  }
  return r;
}

const tracer = (text: string): Tracer => {
  const rs = parseNftRuleset(text);
  return (packet, localAddresses) => traceNftPacket(rs, packet, { localAddresses });
};

async function forms(s: Scenario): Promise<Forms> {
  const full = await sync(s);
  const partial = await syncPartially(s);
  // Upstream's layout for every port (layout: 'upstream'): the same behaviour.
  const upstream = await sync(s, 'upstream');
  const upstreamPartial = await syncPartially(s, 'upstream');
  const host = hostDrop(nftFamily(full.cfg), s.config.hostDrop);
  const table = (r: Synced): string => r.fake.dump(nftFamily(r.cfg), TABLE, { order: 'list' });
  return {
    'nft -f input': tracer(full.sent.join('') + host),
    "the Fake's table afterwards": tracer(table(full) + host),
    'nft -f input, full then partial sync': tracer(partial.sent.join('') + host),
    "the Fake's table after the partial sync": tracer(table(partial) + host),
    "upstream's layout: nft -f input": tracer(upstream.sent.join('') + host),
    "upstream's layout: the Fake's table after the partial sync": tracer(table(upstreamPartial) + host),
  };
}

runScenarios(t, 'nftables', forms);

t.test('the table can fail: without kube-proxy\'s rules, every case that expects more than an untouched packet fails', async (t) => {
  checkTableCanFail(t, 'nftables', tracer(''));
});

// ---------------------------------------------------------------------------
// What only the nftables rules show.
// ---------------------------------------------------------------------------

t.test('the backend hands nft one transaction, the one a dry run plans', async (t) => {
  for (const s of SCENARIOS) {
    const { cfg, sent } = await sync(s);
    t.equal(sent.length, 1, `${s.name}: one transaction`);
    const { snapshot } = scenarioSnapshot(s);
    // The dry run plans for a table in an unknown state (every chain flushed): the same rules and elements.
    const planned = renderFullSync(snapshot, cfg).text.split('\n').filter((l) => /^add (rule|element) /.test(l));
    t.strictSame(sent[0]!.split('\n').filter((l) => /^add (rule|element) /.test(l)), planned, `${s.name}: same rules and elements as the dry run`);
  }
});

t.test('ExternalName and headless services leave no chains or elements', async (t) => {
  const { sent } = await sync(scenario('with --cluster-cidr'));
  const text = sent.join('');
  t.match(text, /ns\/web/, 'the check can fail');
  t.notMatch(text, /ns\/docs/);
  t.notMatch(text, /ns\/headless/);
});

t.test('session affinity: every path records the client with the endpoint it goes to', async (t) => {
  // Shared layout: one set per port, keyed by client and endpoint id.
  const { sent } = await sync(scenario('features'));
  const trace = tracer(sent.join(''));
  const r = trace(from(OTHER_POD, '10.96.1.1', 80), [NODE_IP]);
  checkResult(t, r, { verdict: 'ACCEPT', endpoints: { '10.244.1.2:8080': 0.5, [`${POD_B}:8080`]: 0.5 } });
  for (const p of r.paths) {
    const updates = p.steps.filter((st) => /update @affinity-/.test(st.rule) && !st.action.startsWith('no match'));
    t.equal(updates.length, 1, `one set update on the path to ${p.dnat?.address}`);
    const id = endpointId({ address: p.dnat!.address, port: 8080 });
    t.match(updates[0]?.rule ?? '', new RegExp(`update @affinity-\\w{8}-[^ ]+ \\{ ip saddr \\. numgen random mod 1 offset ${id} \\}`), 'keyed by the id of the endpoint it goes to');
  }
  const plain = trace(from(OTHER_POD, '10.96.2.1', 80), [NODE_IP]);
  t.notOk(plain.paths.some((p) => p.steps.some((st) => st.rule.includes('affinity-'))), 'other services have no affinity');

  // Upstream's layout: a set per endpoint, updated in the endpoint's chain.
  const up = await sync(scenario('features'), 'upstream');
  const r2 = tracer(up.sent.join(''))(from(OTHER_POD, '10.96.1.1', 80), [NODE_IP]);
  checkResult(t, r2, { verdict: 'ACCEPT', endpoints: { '10.244.1.2:8080': 0.5, [`${POD_B}:8080`]: 0.5 } });
  for (const p of r2.paths) {
    const updates = p.steps.filter((st) => /^update @affinity-/.test(st.rule));
    t.equal(updates.length, 1, `one set update on the path to ${p.dnat?.address}`);
    t.match(updates[0]?.chain ?? '', new RegExp(`__${p.dnat?.address.replaceAll('.', '\\.')}/8080$`), 'in the chain of the endpoint it goes to');
  }
});

t.test('source ranges that are no CIDRs are ignored, as upstream; with none left, no firewall at all', async (t) => {
  // (The model drops them before any renderer sees them: test/unit/service-ports.test.ts.)
  const lb = (name: string, clusterIP: string, ip: string, ranges: string[]) =>
    service({ name, type: 'LoadBalancer', clusterIPs: [clusterIP], loadBalancerIPs: [ip], loadBalancerSourceRanges: ranges, ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 0, targetPort: 8080 }] });
  const s: Scenario = {
    name: 'bogus source ranges',
    services: [
      lb('bogus', '10.96.9.1', '198.51.100.50', ['nonsense', '', '10.0.0.0/33']),
      lb('mixed', '10.96.9.2', '198.51.100.51', ['nonsense', '203.0.113.0/25', 'fd00::/64']),
    ],
    slices: [slice('bogus', [{ ip: POD_A }]), slice('mixed', [{ ip: POD_A }])],
    config: { clusterCIDR: '10.244.0.0/16' },
    cases: [],
  };
  const f = await forms(s);
  const only = { [`${POD_A}:8080`]: 1 };
  for (const [form, trace] of Object.entries(f)) {
    checkResult(t, trace(from(OUTSIDER, '198.51.100.50', 80), [NODE_IP]), { verdict: 'ACCEPT', endpoints: only, masquerade: 'always' });
    checkResult(t, trace(from(CLIENT, '198.51.100.51', 80), [NODE_IP]), { verdict: 'ACCEPT', endpoints: only, masquerade: 'always' });
    checkResult(t, trace(from(OUTSIDER, '198.51.100.51', 80), [NODE_IP]), { verdict: 'DROP' });
    t.pass(form);
  }
});

t.test('the tracer refuses what nft refuses: an empty element list', async (t) => {
  // nft 1.0.6: "syntax error, unexpected '}'" for each of these; the tracer used to read `!= { }` as "drop everyone".
  const head = 'add table ip t\nadd chain ip t c\nadd set ip t s { type ipv4_addr ; }\n';
  for (const line of ['add rule ip t c ip saddr != {  } drop', 'add rule ip t c ip saddr . tcp dport vmap { }', 'add element ip t s { }']) {
    t.throws(() => parseNftRuleset(head + line + '\n'), /empty element list/, line);
  }
  t.doesNotThrow(() => parseNftRuleset(head + 'add rule ip t c ip saddr != { 10.0.0.0/8, } drop\n'), 'a trailing comma is fine');
});
