/**
 * The behaviour table (test/helpers/packet-flow-cases.ts), run against the
 * iptables mode: render each cluster with the iptables renderer, trace the
 * packets through the rendered iptables-restore text and check where each one
 * goes. test/unit/packet-flow-nftables.test.ts runs the same table against
 * the nftables mode. Below the table: what only the iptables rules show.
 */
import t from 'tap';
import { renderFull, DEFAULT_RENDER_CONFIG } from '../../src/backends/iptables/render.js';
import type { RenderConfig } from '../../src/backends/iptables/render.js';
import { JUMP_RULES, sepChain, svcChain, svlChain } from '../../src/backends/iptables/names.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import { tracePacket } from '../../src/trace/iptables/trace.js';
import { CLIENT, from, NODE_IP, OTHER_POD } from '../helpers/packet-flow-cases.js';
import type { Scenario } from '../helpers/packet-flow-cases.js';
import { checkResult, checkTableCanFail, renderSettings, runScenarios, scenario, scenarioSnapshot } from '../helpers/packet-flow-check.js';

/** An admin's filter policies of DROP: only what the rules ACCEPT gets through. */
const hostDrop = (hooks: readonly string[] = []): string =>
  (hooks.length === 0 ? '' : `*filter\n${hooks.map((h) => `-P ${h.toUpperCase()} DROP\n`).join('')}COMMIT\n`);

function render(s: Scenario, extra: Partial<RenderConfig> = {}) {
  const cfg: RenderConfig = { ...DEFAULT_RENDER_CONFIG, ...renderSettings(s.config), ...extra };
  const { text } = renderFull(scenarioSnapshot(s).snapshot, cfg, { missingJumps: JUMP_RULES, staleServiceChains: [] });
  return { text, rules: parseIptablesRules(text + hostDrop(s.config.hostDrop)) };
}

runScenarios(t, 'iptables', (s) => {
  const { rules } = render(s);
  return { 'iptables-restore input': (packet, localAddresses) => tracePacket(rules, packet, { localAddresses }) };
});

t.test('the table can fail: without kube-proxy\'s rules, every case that expects more than an untouched packet fails', async (t) => {
  const bare = parseIptablesRules('');
  checkTableCanFail(t, 'iptables', (packet, localAddresses) => tracePacket(bare, packet, { localAddresses }));
});

// ---------------------------------------------------------------------------
// What only the iptables rules show.
// ---------------------------------------------------------------------------

t.test('ExternalName and headless services leave no rules', async (t) => {
  const { text } = render(scenario('with --cluster-cidr'));
  t.match(text, /ns\/web/, 'the check can fail');
  t.notMatch(text, /ns\/docs/);
  t.notMatch(text, /ns\/headless/);
});

t.test('affinity: the recent --rcheck/--set pair per endpoint, checks before the random spread', async (t) => {
  const s = scenario('features');
  const { text, rules } = render(s);
  const sp = scenarioSnapshot(s).snapshot.servicePorts.get('ns/sticky:http/TCP')!;
  const svc = rules.tables.get('nat')!.chains.get(svcChain(sp))!;
  const seps = sp.endpoints.map((e) => sepChain(sp, `${e.address}:${e.port}`));
  const rcheck = svc.rules.filter((r) => r.raw.includes('--rcheck'));
  t.same(
    rcheck.map((r) => r.raw.replace(/^.*?-m recent/, '-m recent')),
    seps.map((c) => `-m recent --name ${c} --rcheck --seconds 600 --reap -j ${c}`),
    'one check per endpoint, naming its own chain, with the timeout',
  );
  const firstSpread = svc.rules.findIndex((r) => r.raw.includes('-j KUBE-SEP-') && !r.raw.includes('--rcheck'));
  t.ok(rcheck.every((r) => svc.rules.indexOf(r) < firstSpread), 'checks come before the spread');
  for (const c of seps) {
    const dnat = rules.tables.get('nat')!.chains.get(c)!.rules.find((r) => r.target?.name === 'DNAT')!;
    t.match(dnat.raw, new RegExp(`-m recent --name ${c} --set -m tcp -p tcp -j DNAT`), `${c} records the source`);
  }
  const r = tracePacket(rules, from(OTHER_POD, '10.96.1.1', 80), { localAddresses: [NODE_IP] });
  for (const p of r.paths) {
    t.equal(p.steps.filter((st) => st.chain === svcChain(sp) && st.rule.includes('--rcheck')).length, 2, 'every path passes both checks');
  }
  t.equal((text.match(/--rcheck/g) ?? []).length, 2, 'no other service gets affinity rules');
});

t.test('iTP Local: the masquerade rule is in the local policy chain', async (t) => {
  const s = scenario('features');
  const { rules } = render(s);
  const sp = scenarioSnapshot(s).snapshot.servicePorts.get('ns/itp-local:http/TCP')!;
  const nat = rules.tables.get('nat')!;
  t.match(nat.chains.get(svlChain(sp))!.rules[0]!.raw, /-d 10\.96\.4\.1 --dport 80 ! -s 10\.244\.0\.0\/16 -j KUBE-MARK-MASQ/);
  t.notOk(nat.chains.has(svcChain(sp)), 'no cluster policy chain');
});

t.test('nodePortAddresses: KUBE-NODEPORTS per listed address instead of per address type', async (t) => {
  const listed = render(scenario('nodePortAddresses: only the listed node IPs are NodePorts'));
  t.match(listed.text, /-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 203\.0\.113\.1 -j KUBE-NODEPORTS\n/);
  t.notMatch(listed.text, /--dst-type LOCAL -j KUBE-NODEPORTS/);
  t.notMatch(listed.text, /block incoming localnet/, 'no loopback NodePort address: no guard either');
});

t.test('localhost NodePorts: the guard and the loopback exclusion', async (t) => {
  const on = render(scenario('features'));
  t.match(on.text, /-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127\.0\.0\.0\/8 ! -s 127\.0\.0\.0\/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n/);
  t.match(on.text, /--dst-type LOCAL -j KUBE-NODEPORTS\n/);
  const off = render(scenario('localhost NodePorts off'));
  t.match(off.text, /--dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS\n/);
  t.notMatch(off.text, /block incoming localnet/);
  t.match(render(scenario('nodePortAddresses listing loopback')).text, /block incoming localnet/);
});

t.test('health check node ports: accepted in filter by a rule of their own', async (t) => {
  const s = scenario('health check node ports, behind a host firewall dropping INPUT');
  const { rules } = render(s);
  const r = tracePacket(rules, from(CLIENT, NODE_IP, 32000), { localAddresses: [NODE_IP] });
  checkResult(t, r, { verdict: 'ACCEPT' });
  t.ok(r.paths[0]!.steps.some((st) => st.comment === 'ns/local-ext:http health check node port' && st.action === 'ACCEPT'));
});

t.test('large-cluster mode leaves out the per-endpoint comments, and only those', async (t) => {
  const s = scenario('features');
  const trace = (cfg: Partial<RenderConfig>) => tracePacket(render(s, cfg).rules, from(OTHER_POD, '10.96.1.1', 80), { localAddresses: [NODE_IP] });
  const endpointSteps = (r: ReturnType<typeof trace>) => r.paths.flatMap((p) => p.steps).filter((st) => /^KUBE-S(VC|EP)-/.test(st.chain));
  const large = trace({ largeClusterMode: true });
  t.ok(endpointSteps(large).length >= 6);
  t.ok(endpointSteps(large).every((st) => st.comment === undefined), 'no comment on SVC -> SEP and SEP rules');
  t.ok(large.paths[0]!.steps.some((st) => st.chain === 'KUBE-SERVICES' && st.comment === 'ns/sticky:http cluster IP'), 'KUBE-SERVICES keeps its comments');
  const normal = trace({});
  t.ok(endpointSteps(normal).every((st) => st.comment !== undefined && st.comment.startsWith('ns/sticky:http')), 'normally every one has a comment');
  const { text } = render(s, { largeClusterMode: true });
  t.notMatch(text, /-A KUBE-SEP-\S+ -m comment/);
  t.notMatch(text, / -> 10\.244/);
  t.match(text, /masquerade traffic for ns\/ranged:http external destinations/);
});

t.test('IPv6: the same renderer, for ip6tables', async (t) => {
  const { text } = render(scenario('IPv6'));
  t.match(text, /--to-destination \[fd00:10:244:1::2\]:8080/);
  t.match(text, /-m addrtype --dst-type LOCAL ! -d ::1\/128 -j KUBE-NODEPORTS/);
  t.notMatch(text, /127\.0\.0\.0/, 'no IPv4 loopback guard');
  t.notMatch(text, /(^|[\s/])\d+\.\d+\.\d+\.\d+/m, 'no IPv4 address anywhere');
});
