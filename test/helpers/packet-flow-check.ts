/**
 * Runs the packet-flow behaviour table (packet-flow-cases.ts) against one
 * mode: the mode's test renders each scenario and hands back tracers; every
 * case is traced and its verdict, endpoints (with probabilities) and
 * masquerade are checked against the expectation for that mode.
 */
import type { Test } from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import type { ChangeSet, Snapshot } from '../../src/agent/model/types.js';
import type { TracePacket, TraceResult } from '../../src/trace/iptables/trace.js';
import { endpointMap, expectationFor, NODE_IP, SCENARIOS } from './packet-flow-cases.js';
import type { Expectation, FlowCase, FlowConfig, Mode, Scenario } from './packet-flow-cases.js';

export type Tracer = (packet: TracePacket, localAddresses: string[]) => TraceResult;

/**
 * One or more forms of the rendered rules to trace (e.g. the text handed to
 * the tool, and what the table holds afterwards), by name.
 */
export type Forms = Record<string, Tracer>;

/** The scenario of the table with this name. */
export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no scenario ${name}`);
  return s;
}

/** The real store of the scenario's node and family, holding its services (and its EndpointSlices unless `slices` is false). */
export function scenarioStore(s: Scenario, slices = true): ClusterStore {
  const store = new ClusterStore(s.nodeName ?? 'node-1', s.family ?? 'IPv4');
  for (const svc of s.services) store.upsertService(svc);
  if (slices) for (const sl of s.slices) store.upsertSlice(sl);
  return store;
}

/** The scenario's snapshot (and the change set of building it), through the real store. */
export function scenarioSnapshot(s: Scenario): { snapshot: Snapshot; changes: ChangeSet } {
  return scenarioStore(s).snapshot();
}

/** The scenario's configuration without the keys that are not render configuration, and without undefined values. */
export function renderSettings(cfg: FlowConfig): Omit<FlowConfig, 'serviceCIDRs' | 'hostDrop'> {
  const { serviceCIDRs: _c, hostDrop: _h, ...rest } = cfg;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

/** Whether a trace result meets an expectation. */
export function meets(r: TraceResult, e: Expectation): boolean {
  if (r.verdict !== e.verdict) return false;
  const got = endpointMap(r.endpoints);
  const want = e.endpoints ?? {};
  const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
  for (const k of keys) if (got[k] !== want[k]) return false;
  return e.masquerade === undefined || r.masquerade === e.masquerade;
}

export function checkResult(t: Test, r: TraceResult, want: Expectation): void {
  t.equal(r.verdict, want.verdict, 'verdict');
  t.strictSame(endpointMap(r.endpoints), want.endpoints ?? {}, 'endpoints and probabilities');
  if (want.masquerade !== undefined) t.equal(r.masquerade, want.masquerade, 'masquerade');
}

function checkCase(t: Test, mode: Mode, s: Scenario, c: FlowCase, trace: Tracer): void {
  const r = trace(c.packet, c.localAddresses ?? s.localAddresses ?? [NODE_IP]);
  const own = c.modes?.[mode];
  checkResult(t, r, expectationFor(c, mode));
  if (c.hairpin !== undefined) {
    for (const p of r.paths) if (p.verdict === 'ACCEPT') t.equal(p.masquerade, p.dnat?.address === c.hairpin, `masquerade on the path to ${p.dnat?.address}`);
  }
  // A per-mode expectation must be needed: this mode really does not do what the other one does.
  if (own !== undefined) t.notOk(meets(r, c), `differs from the ${mode === 'iptables' ? 'nftables' : 'iptables'} mode: ${own.why}`);
}

/** Runs every scenario of the table against `mode`. */
export function runScenarios(t: Test, mode: Mode, load: (s: Scenario) => Forms | Promise<Forms>): void {
  t.test('the table is well-formed', async (t) => {
    const names = new Set<string>();
    for (const s of SCENARIOS) {
      t.notOk(names.has(s.name), `scenario names are unique: ${s.name}`);
      names.add(s.name);
      const cases = new Set<string>();
      for (const c of s.cases) {
        t.notOk(cases.has(c.what), `case names are unique: ${s.name} / ${c.what}`);
        cases.add(c.what);
        for (const e of [c, ...Object.values(c.modes ?? {})]) {
          // Where a packet is DNATed, whether it is masqueraded is part of where it goes.
          if (Object.keys(e.endpoints ?? {}).length > 0) t.ok(e.masquerade !== undefined, `${s.name} / ${c.what}: masquerade expected`);
        }
        for (const o of Object.values(c.modes ?? {})) t.ok(o.why.length > 0, `${s.name} / ${c.what}: says why the modes differ`);
      }
    }
  });
  for (const s of SCENARIOS) {
    t.test(s.name, async (t) => {
      const forms = await load(s);
      const names = Object.keys(forms);
      t.ok(names.length > 0, 'something to trace');
      for (const c of s.cases) {
        const todo = c.todo?.[mode];
        t.test(c.what, todo !== undefined ? { todo } : {}, async (t) => {
          if (names.length === 1) checkCase(t, mode, s, c, forms[names[0]!]!);
          else for (const n of names) t.test(n, async (t) => checkCase(t, mode, s, c, forms[n]!));
        });
      }
    });
  }
}

/**
 * The table can fail: traced through a ruleset without kube-proxy's rules,
 * every case that expects more than "accepted, untouched" must fail.
 */
export function checkTableCanFail(t: Test, mode: Mode, bare: Tracer): void {
  let failing = 0;
  for (const s of SCENARIOS) {
    for (const c of s.cases) {
      const want = expectationFor(c, mode);
      const untouched = want.verdict === 'ACCEPT' && Object.keys(want.endpoints ?? {}).length === 0;
      const met = meets(bare(c.packet, c.localAddresses ?? s.localAddresses ?? [NODE_IP]), want);
      if (!untouched) {
        t.notOk(met, `${s.name} / ${c.what}: fails without the rules`);
        failing++;
      }
    }
  }
  t.ok(failing > 100, `${failing} cases need the rules`);
}
