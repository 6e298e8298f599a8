/**
 * The pure iptables renderer: snapshot in, iptables-restore text out. No I/O.
 * The layout follows upstream kube-proxy's iptables mode so that
 * `iptables-save` reads like upstream's.
 */
import type { IPFamily, ServicePort, Snapshot } from '../../agent/model/types.js';
import { SHARED_BY_ID, SHARED_CHAINS } from './layout.js';
import type { SharedChain, SharedChainId } from './layout.js';
import type { JumpRule } from './names.js';
import { renderServicePort } from './render-service.js';
import type { ServiceChain } from './render-service.js';
import { LineChunks } from './restore-input.js';
import type { BuiltInput, RestoreInputBuilder, Table } from './restore-input.js';
import { comment } from './rule-text.js';

export { comment, markHex, probability } from './rule-text.js';

export interface RenderConfig {
  /** Pod CIDR of the cluster: traffic to a ClusterIP from outside it is masqueraded. */
  clusterCIDR?: string;
  /** Masquerade all traffic to ClusterIPs. */
  masqueradeAll: boolean;
  /** The masquerade mark bit (0-31), 14 by default as upstream (0x4000). */
  masqueradeBit: number;
  /** MASQUERADE --random-fully, where iptables supports it. */
  randomFully: boolean;
  /** The address family this ruleset is for (iptables or ip6tables); default IPv4. clusterCIDR and every address below must be of it. */
  family?: IPFamily;
  /** This node's name, for EndpointSlice node hints (PreferSameNode). */
  nodeName?: string;
  /** This node's `topology.kubernetes.io/zone` label, for zone hints (PreferSameZone); unset: zone hints unused. */
  nodeZone?: string;
  /** This node's primary IP of this family: a loadBalancerSourceRanges entry containing it also admits the LB IPs as sources (upstream allowFromNode). */
  nodeIP?: string;
  /** The node IPs (this family) NodePorts are accepted on, resolved from --nodeport-addresses; unset: every local address. */
  nodePortAddresses?: readonly string[];
  /**
   * --nodeport-addresses as given (CIDRs or `primary`) and this host's
   * addresses: resolved into nodePortAddresses at each sync, with the Node's
   * primary IPs from the snapshot. Not used by the renderer itself.
   */
  nodePortSpec?: { spec: readonly string[]; localAddresses: readonly string[] };
  /** iptables.localhostNodePorts (default true): NodePorts on 127.0.0.0/8 (IPv4), with route_localnet=1 and its guard rule. */
  localhostNodePorts?: boolean;
  /** More than 1000 endpoints in total (upstream's threshold): per-endpoint comments are left out. */
  largeClusterMode?: boolean;
}

export const DEFAULT_RENDER_CONFIG: RenderConfig = { masqueradeAll: false, masqueradeBit: 14, randomFully: true };

export type RestoreInput = BuiltInput;

export interface FullRenderOptions {
  /** Jump rules missing from the built-in chains, to insert. */
  missingJumps: readonly JumpRule[];
  /** Per-service chains (`table/CHAIN`) present in the kernel but not wanted any more: flushed and deleted. */
  staleServiceChains: Iterable<string>;
}

/**
 * What the kernel holds for one service port after a sync, as far as a
 * later partial sync needs it: the ServicePort it was rendered from (the
 * store never changes one in place: a change is a new object, so its
 * per-service chains can be rendered again, identically, when they have to
 * be compared) and its rules in the shared chains (kept: every port's are
 * needed whenever a shared chain is rewritten).
 */
export interface WrittenPort {
  sp: ServicePort;
  shared: ReadonlyMap<SharedChainId, readonly string[]>;
}

function jumpLine(j: JumpRule): string {
  const extra = j.extra.length > 0 ? `${j.extra.join(' ')} ` : '';
  const note = j.comment !== '' ? `${comment(j.comment)} ` : '';
  return `-I ${j.from} ${extra}${note}-j ${j.to}`;
}

/** One shared chain's rules: head, every port's contribution (in the order given), tail. */
function sharedChainRules(sc: SharedChain, ports: Iterable<{ shared: ReadonlyMap<SharedChainId, readonly string[]> }>, cfg: RenderConfig, emit: (rules: readonly string[]) => void): void {
  emit(sc.head(cfg));
  for (const p of ports) {
    const rs = p.shared.get(sc.id);
    if (rs) emit(rs);
  }
  emit(sc.tail(cfg));
}

/** Writes one shared chain whole: head, every port's contribution (in key order), tail. */
export function writeSharedChain(b: RestoreInputBuilder, id: string, ports: Iterable<{ shared: ReadonlyMap<SharedChainId, readonly string[]> }>, cfg: RenderConfig): void {
  const sc = SHARED_BY_ID.get(id);
  if (!sc) throw new Error(`unknown shared chain ${id}`);
  b.declare(sc.table, sc.name);
  sharedChainRules(sc, ports, cfg, (rules) => b.rules(sc.table, rules));
}

/**
 * Renders one iptables-restore (--noflush) input that rewrites every chain
 * this agent owns, for the whole snapshot. Declaring a chain (`:NAME - [0:0]`)
 * flushes it, so the result does not depend on what was there before.
 */
export function renderFull(snapshot: Snapshot, cfg: RenderConfig, opts: FullRenderOptions): RestoreInput {
  const full = new FullRestoreInput(snapshot.servicePorts, cfg, opts);
  const text = [...full].join('');
  return { text, ruleCount: full.ruleCount, rulesByTable: full.rulesByTable };
}

/**
 * An empty chain in each table whose disappearance tells the agent that
 * someone flushed or deleted our rules (as upstream's KUBE-PROXY-CANARY).
 */
export const CANARY_CHAIN = 'KUBE-PROXY-CANARY';
export const CANARY_TABLES = ['mangle', 'nat', 'filter'] as const;

/**
 * The tables of a full input, in order. nat, where the per-service chains
 * are, comes first: its per-service part is written as it is rendered, port
 * by port, and the shared chains after it (filter's included) need every
 * port's contribution.
 */
const TABLE_ORDER: readonly Table[] = ['nat', 'filter', 'mangle'];
const STREAMED_TABLE: ServiceChain['table'] = 'nat';

/**
 * The input of a full sync, rendered lazily: iterating it renders the
 * service ports one after the other and yields the text in pieces of about
 * CHUNK_CHARS characters, so the input (44 MB at 10,000 services of 10
 * endpoints) is never held whole: a consumer writes each piece to
 * iptables-restore as it comes. Iterable once; the counts and the written
 * state are complete when `done`.
 *
 * Per table: `*table`; the canary and shared chains declared; the missing
 * jump rules. In nat, then each service port's block: its chains declared,
 * then their rules (every jump target of a rule is declared before it: the
 * port's own chains, or a shared chain). Then the shared chains' rules
 * (head, every port's contribution in key order, tail), the stale chains
 * flushed, then deleted (all flushed before any is deleted: one may refer
 * to another), and COMMIT.
 */
export class FullRestoreInput implements Iterable<string> {
  /** Bytes, rules, and rules per table, of the pieces produced so far. */
  bytes = 0;
  ruleCount = 0;
  readonly rulesByTable: Record<string, number> = {};
  /** By service port key, in key order: what was rendered so far. */
  readonly ports = new Map<string, WrittenPort>();
  /** Every piece has been produced. */
  done = false;
  /** Time spent rendering inside the iteration, ms (the rest of a consumer's time is its own). */
  renderMs = 0;
  private started = false;

  constructor(
    private readonly servicePorts: ReadonlyMap<string, ServicePort>,
    private readonly cfg: RenderConfig,
    private readonly opts: FullRenderOptions,
  ) {}

  *[Symbol.iterator](): Iterator<string> {
    if (this.started) throw new Error('a full restore input can be iterated only once');
    this.started = true;
    let resumed = performance.now();
    const out = new LineChunks();
    const pieces = function* (self: FullRestoreInput): Generator<string, void, undefined> {
      for (const c of out.chunks.splice(0)) {
        self.bytes += Buffer.byteLength(c);
        self.renderMs += performance.now() - resumed;
        yield c;
        resumed = performance.now();
      }
    };
    const { cfg, opts } = this;
    const stale = new Set(opts.staleServiceChains);
    for (const table of TABLE_ORDER) {
      const shared = SHARED_CHAINS.filter((sc) => sc.table === table);
      out.line(`*${table}`);
      const declared = new Set<string>();
      const declare = (name: string): void => {
        if (!declared.has(name)) out.line(`:${name} - [0:0]`);
        declared.add(name);
      };
      if ((CANARY_TABLES as readonly string[]).includes(table)) declare(CANARY_CHAIN);
      for (const sc of shared) declare(sc.name);
      let rules = 0;
      for (const j of opts.missingJumps) {
        if (j.table !== table) continue;
        out.line(jumpLine(j));
        rules++;
      }
      if (table === STREAMED_TABLE) {
        for (const key of [...this.servicePorts.keys()].sort()) {
          const sp = this.servicePorts.get(key)!;
          const r = renderServicePort(sp, cfg);
          for (const c of r.chains) {
            if (stale.size > 0) stale.delete(`${c.table}/${c.name}`);
            out.line(`:${c.name} - [0:0]`);
          }
          for (const c of r.chains) {
            out.lines(c.rules);
            rules += c.rules.length;
          }
          this.ports.set(key, { sp, shared: r.shared });
          if (out.chunks.length > 0) yield* pieces(this);
        }
      }
      for (const sc of shared) {
        sharedChainRules(sc, this.ports.values(), cfg, (rs) => {
          out.lines(rs);
          rules += rs.length;
        });
      }
      const gone = [...stale].filter((id) => id.startsWith(`${table}/`)).sort().map((id) => id.slice(table.length + 1));
      const flushed = gone.filter((name) => !declared.has(name));
      for (const name of flushed) declare(name);
      for (const name of flushed) out.line(`-X ${name}`);
      out.line('COMMIT');
      this.rulesByTable[table] = rules;
      this.ruleCount += rules;
      if (out.chunks.length > 0) yield* pieces(this);
    }
    out.flush();
    yield* pieces(this);
    this.done = true;
    this.renderMs += performance.now() - resumed;
  }
}
