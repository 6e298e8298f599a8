/**
 * Network-namespace test/demo harness: builds a tiny single-node "cluster" out of
 * Linux network namespaces so that kube-proxy-ts (running inside the node
 * namespace) can be exercised with real packets. Needs root. Nothing is ever
 * created or changed in the root network namespace: every namespace is named
 * `<prefix>-...`, veth pairs are created directly inside those namespaces.
 *
 *   <prefix>-client                 <prefix>-node                      <prefix>-pod-<name>
 *  +------------------+          +-------------------------+          +----------------------+
 *  | eth0 203.0.113.2 |----------| eth0 203.0.113.1/24     |          |                      |
 *  |  /24             |  veth    | default via 203.0.113.2 |  veth    | eth0 <pod-ip>/32     |
 *  | 198.51.100.0/24  |          | vpod<i> 10.244.255.1/32 |----------| 169.254.1.1 dev eth0 |
 *  | 10.96.0.0/12     | via .1   |   proxy_arp=1           |          | default via          |
 *  | 10.244.0.0/16    |          | <pod-ip>/32 dev vpod<i> |          |  169.254.1.1 onlink  |
 *  +------------------+          | ip_forward=1            |          | podserver: tcp 8080  |
 *                                +-------------------------+          |            udp 5353  |
 *                                                                     +----------------------+
 *
 * - node namespace (`<prefix>-node`): where the agent runs and programs
 *   iptables/nftables. `net.ipv4.ip_forward=1`, ICMP redirects off,
 *   rp_filter 0, `route_localnet` left at its default (0). Outside link `eth0`
 *   203.0.113.1/24 to the client; default route via the client (203.0.113.2),
 *   so the node can originate packets to ClusterIPs (10.96.0.0/12): they are
 *   DNATed in nat OUTPUT before they leave. The client is not a router
 *   (ip_forward=0), so packets nobody DNATs simply vanish there (no loops).
 * - pods (`<prefix>-pod-<name>`): routed, Calico-style, no bridge. The pod side
 *   `eth0` holds the pod IP as /32 with a default route via the link-local
 *   gateway 169.254.1.1 (onlink); the node side `vpod<i>` (i = pod index) has
 *   proxy_arp=1 (it answers the ARP for 169.254.1.1), a /32 route to the pod IP,
 *   and the address 10.244.255.1/32 (the same on every vpod<i>): it is the
 *   node's source address towards pods, i.e. what MASQUERADE picks for
 *   pod-bound traffic (e.g. the hairpin case pod -> service -> same pod).
 *   Every pod-to-pod packet, including a pod talking to itself through a
 *   service, crosses the node's netfilter (FORWARD, nat PREROUTING/POSTROUTING).
 *   Hairpin needs nothing special beyond ip_forward on the node (routing a
 *   packet back out the interface it came in on is plain forwarding; no
 *   hairpin/bridge setting exists or is needed without a bridge) -- but the
 *   MASQUERADE is mandatory: a pod receiving a packet whose source is its own
 *   IP drops it as a martian, so un-masqueraded hairpin traffic times out.
 * - client namespace (`<prefix>-client`): an outside machine, 203.0.113.2/24,
 *   routing 198.51.100.0/24 (LoadBalancer / external IPs), 10.96.0.0/12
 *   (ClusterIPs) and 10.244.0.0/16 (pod IPs, as with BGP-advertised pod
 *   routes) via the node 203.0.113.1. NodePorts are reached on 203.0.113.1.
 * - Loopback is up in every namespace.
 * - The client also holds extra source addresses (`extraClientIps`, default
 *   203.0.113.3): secondary, so never its default source, but usable with
 *   probe's `bind` (e.g. an allowed and a denied loadBalancerSourceRanges source).
 * - Pods may claim another node (`nodeName`, default 'node-1'): metadata for
 *   the EndpointSlices a test writes; they are wired exactly like the others.
 * - Dual-stack (`ipv6: true`, or any pod giving `ip6`), on top of the above:
 *
 *     client eth0 2001:db8:1::2/64 (+ ::3, deprecated)   node eth0 2001:db8:1::1/64
 *       fe80::2; routes 2001:db8:2::/64 (LB / external),    fe80::1; default via 2001:db8:1::2
 *       fd00:10:96::/112 (services), fd00:10:244::/56       vpod<i>: fe80::1/64, fd00:10:244:ff::1/128,
 *       (pods) via 2001:db8:1::1                             route <pod-ip6>/128 src fd00:10:244:ff::1
 *     pod eth0 <pod-ip6>/128 (default fd00:10:244:A::B for 10.244.A.B), fe80::2/64,
 *       default via fe80::1 dev eth0
 *
 *   No proxy_ndp is needed: the node-side veth really holds the pods' gateway
 *   fe80::1 (link-local addresses are per link, so every vpod<i> has the same
 *   one), and answers its neighbour solicitations itself; a /128 on the pod's
 *   eth0 is answered by plain NDP as well. fd00:10:244:ff::1 plays the role of
 *   10.244.255.1 (IPv6 MASQUERADE source towards pods, node-to-pod source).
 *   Every IPv6 address is `nodad` and the automatic link-locals are off
 *   (addrgenmode none; fixed fe80::1 / fe80::2 instead), so nothing waits for
 *   duplicate address detection. Node sysctls: net.ipv6.conf.{all,default}.forwarding=1.
 *   As with IPv4, hairpin traffic (pod -> service -> same pod) that is not
 *   masqueraded times out. Unlike IPv4, a TCP connection refused by ICMPv6
 *   (ip6tables REJECT's default) reads 'refused' only after ~1 s (see probe.ts).
 * - Each pod runs podserver (scripts/netns/podserver.ts): HTTP on TCP 8080 answering
 *   the pod name as body (+ headers X-Pod, X-Source-Ip, X-Source-Port), and UDP
 *   5353 answering "<pod>\n<src-ip>:<src-port>\n", both over IPv4 and IPv6.
 * - probe(ns, ...) runs a TCP/UDP probe from inside a namespace and tells
 *   'refused' (RST / ICMP port-unreachable, immediate) from 'timeout' (silent
 *   drop); see probe.ts. Probes are served by one long-lived process per
 *   namespace (the pod's podserver itself, `probe.js --serve` elsewhere; the
 *   node's and client's are started with the topology), so a probe costs a
 *   JSON line over a pipe, not a process spawn.
 * - Sysctls set on the node: ip_forward=1, conf.{all,default,vpod<i>}.
 *   send_redirects=0 and rp_filter=0, conf.vpod<i>.proxy_arp=1 and
 *   neigh.vpod<i>.proxy_delay=0 (the kernel otherwise delays proxy-ARP replies
 *   by a random 0..800 ms, i.e. the first packet of every pod stalls).
 *   Nothing is set in pods or the client.
 *
 * Typical use (as root):
 *   const topo = await createTopology({ prefix: `kpt-x-${process.pid}`,
 *     pods: [{ name: 'pod-a', ip: '10.244.1.10' }] });
 *   try {
 *     const agent = topo.spawn(topo.nodeNs, nodeCmd('dist/src/agent/main.js', '--proxy-mode=iptables', ...));
 *     const r = await topo.probe(topo.clientNs, { proto: 'tcp', host: '198.51.100.10', port: 80, timeoutMs: 1000 });
 *     if (r.ok) console.log(r.pod, r.from); else console.log(r.error); // 'refused' | 'timeout' | ...
 *   } finally { await topo.destroy(); }
 *
 * Helper scripts run as separate processes: when this module is loaded from
 * dist/ the sibling compiled .js files are used; when loaded from the .ts
 * sources (tap / ts-node) podserver.ts and probe.ts are transpiled with
 * `typescript` once into a content-hashed cache under
 * os.tmpdir()/kube-proxy-ts-netns/<hash>/, so no build is needed. They are
 * started with NODE_OPTIONS removed (see nodeCmd).
 *
 * Cleanup: destroy() kills every process living in the topology's namespaces
 * and deletes them. In addition a small watchdog (`sh`, own session) holds a
 * pipe from this process; if this process dies without destroy() (crash,
 * SIGKILL, tap timeout) the watchdog does the same cleanup. Helper processes
 * also exit when their stdin (a pipe from this process) closes.
 * destroyAllWithPrefix(prefix) removes leftovers named `<prefix>-*`.
 */
import { spawn as cpSpawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, existsSync, readdirSync, statSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { ProbeOptions, ProbeResult } from './probe.js';

export type { ProbeOptions, ProbeResult, ProbeSuccess, ProbeFailure, ProbeProto } from './probe.js';

/** Node's address on the outside link. */
export const NODE_IP = '203.0.113.1';
/** The outside client's address. */
export const CLIENT_IP = '203.0.113.2';
/** Prefix length of the outside link. */
export const OUTSIDE_CIDR = '203.0.113.0/24';
/** Node-side address on every pod veth: node's source address towards pods / MASQUERADE source. */
export const NODE_POD_SIDE_IP = '10.244.255.1';
/** Link-local gateway the pods route through (answered by proxy ARP). */
export const POD_GATEWAY = '169.254.1.1';
export const CLUSTER_CIDR = '10.244.0.0/16';
export const SERVICE_CIDR = '10.96.0.0/12';
/** Where LoadBalancer ingress IPs and externalIPs live (client routes it via the node). */
export const EXTERNAL_CIDR = '198.51.100.0/24';
export const POD_TCP_PORT = 8080;
export const POD_UDP_PORT = 5353;
/** A second outside source address on the client (secondary: never its default source). */
export const CLIENT_IP2 = '203.0.113.3';
/** The node's name as the e2e tests pass it with --hostname-override; pods are on it unless they say otherwise. */
export const NODE_NAME = 'node-1';

// IPv6 (dual-stack topologies only: `ipv6: true`)
/** Node's IPv6 address on the outside link. */
export const NODE_IP6 = '2001:db8:1::1';
/** The outside client's IPv6 address. */
export const CLIENT_IP6 = '2001:db8:1::2';
/** A second IPv6 source address on the client (deprecated, preferred_lft 0: only used when bound explicitly). */
export const CLIENT_IP6_2 = '2001:db8:1::3';
export const OUTSIDE_CIDR6 = '2001:db8:1::/64';
/** Node-side IPv6 address on every pod veth: node's source towards pods / IPv6 MASQUERADE source. */
export const NODE_POD_SIDE_IP6 = 'fd00:10:244:ff::1';
/** Link-local gateway of the pods (fe80::1 on every node-side pod veth; answered by plain NDP). */
export const POD_GATEWAY6 = 'fe80::1';
/** The pods' own link-local address (fe80::2 on every pod eth0). */
export const POD_LINK_LOCAL6 = 'fe80::2';
export const CLUSTER_CIDR6 = 'fd00:10:244::/56';
export const SERVICE_CIDR6 = 'fd00:10:96::/112';
/** Where IPv6 LoadBalancer ingress IPs and externalIPs live (client routes it via the node). */
export const EXTERNAL_CIDR6 = '2001:db8:2::/64';

/**
 * The IPv6 address a pod gets by default in a dual-stack topology: the decimal
 * digits of its IPv4 address's last two octets written as hex groups,
 * `10.244.A.B` -> `fd00:10:244:A::B` (e.g. 10.244.1.10 -> fd00:10:244:1::10),
 * in canonical form.
 */
export function podIp6(ipv4: string): string {
  const m = IPV4_RE.exec(ipv4);
  if (!m) throw new Error(`invalid IPv4 address ${JSON.stringify(ipv4)}`);
  const [, , c, d] = ipv4.split('.');
  if (d === '0') throw new Error(`cannot derive an IPv6 address from ${ipv4} (last octet 0); give ip6 explicitly`);
  const ip6 = canonicalIp6(`fd00:10:244:${c}::${d}`);
  if (!ip6) throw new Error(`cannot derive an IPv6 address from ${ipv4}`);
  return ip6;
}

/** Canonical (RFC 5952) text of an IPv6 address, or undefined if it is not one. */
export function canonicalIp6(addr: string): string | undefined {
  if (!net.isIPv6(addr) || addr.includes('%')) return undefined;
  try {
    return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

function inIpv4Prefix24(addr: string, cidr24: string): boolean {
  return addr.split('.').slice(0, 3).join('.') === cidr24.split('/')[0]!.split('.').slice(0, 3).join('.');
}

function inIp6Prefix64(addr: string, cidr64: string): boolean {
  const expand = (a: string): string[] => {
    const [head = '', tail] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0'));
  };
  return expand(addr).slice(0, 4).join(':') === expand(cidr64.split('/')[0]!).slice(0, 4).join(':');
}

export interface TopologyPodSpec {
  name: string;
  /** IPv4 address (/32, routed). */
  ip: string;
  /**
   * IPv6 address (/128, routed) in a dual-stack topology; default podIp6(ip).
   * Giving one makes the topology dual-stack.
   */
  ip6?: string;
  /**
   * The node this pod claims to run on, for the manifests (EndpointSlice
   * `nodeName`), default NODE_NAME ('node-1'). Pure metadata: every pod is
   * physically attached to the one node namespace, so a pod "on node-2" is
   * reachable exactly like a local one (as it would be through the pod network).
   */
  nodeName?: string;
}

export interface TopologyOptions {
  /** Every namespace is named `<prefix>-...`. Letters, digits, '.', '_', '-'. */
  prefix: string;
  pods: TopologyPodSpec[];
  /**
   * Dual-stack: IPv6 on the outside link (NODE_IP6 / CLIENT_IP6), on every pod
   * (ip6, default podIp6(ip)), IPv6 forwarding on the node, IPv6 routes on the
   * client. Default: true iff some pod gives `ip6`.
   */
  ipv6?: boolean;
  /**
   * More source addresses on the client, in 203.0.113.0/24 (or, dual-stack,
   * 2001:db8:1::/64), e.g. to probe from an allowed and a denied source with
   * probe's `bind`. Default [CLIENT_IP2] (+ [CLIENT_IP6_2] when dual-stack).
   * They are never the client's default source address.
   */
  extraClientIps?: string[];
  /** Start podserver in every pod and wait until it listens (default true). */
  startPodServers?: boolean;
  /** Start the probe helpers of the node and client namespaces right away (default true). */
  warmProbes?: boolean;
  /** Delete leftover namespaces named `<prefix>-*` first instead of failing (default false). */
  replaceExisting?: boolean;
}

export interface TopologyPod {
  name: string;
  ip: string;
  /** IPv6 address, in a dual-stack topology only. */
  ip6?: string;
  /** The node it claims to run on (see TopologyPodSpec.nodeName). */
  nodeName: string;
  /** The pod's network namespace. */
  ns: string;
  /** Name of the node-side veth inside the node namespace. */
  hostVeth: string;
}

export interface ExecOptions {
  /** Written to stdin. */
  input?: string;
  /** Kill the command after this long (default 30000 ms). */
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Throw if the exit code is not 0 (default false). */
  check?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** 'pipe' (default) buffers output on the returned subprocess; 'inherit' shows it. */
  stdio?: 'pipe' | 'inherit' | 'ignore';
}

export interface Topology {
  readonly prefix: string;
  readonly nodeNs: string;
  readonly clientNs: string;
  readonly pods: TopologyPod[];
  /** 203.0.113.1 */
  readonly nodeIp: string;
  /** 203.0.113.2 */
  readonly clientIp: string;
  /** 10.244.255.1 — node's address on every pod veth (MASQUERADE source towards pods). */
  readonly nodePodSideIp: string;
  /** Whether the topology is dual-stack. */
  readonly ipv6: boolean;
  /** 2001:db8:1::1 when dual-stack. */
  readonly nodeIp6?: string;
  /** 2001:db8:1::2 when dual-stack. */
  readonly clientIp6?: string;
  /** fd00:10:244:ff::1 when dual-stack — node's IPv6 address on every pod veth (IPv6 MASQUERADE source towards pods). */
  readonly nodePodSideIp6?: string;
  /** The client's extra source addresses (see TopologyOptions.extraClientIps). */
  readonly extraClientIps: string[];
  /** All namespaces of this topology. */
  readonly namespaces: string[];
  pod(name: string): TopologyPod;
  /** Run a command inside a namespace (`ip netns exec ns ...`), never throws unless opts.check. */
  exec(ns: string, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Start a long-running command inside a namespace (e.g. the agent). The process
   * is tracked: destroy() sends it SIGTERM (then SIGKILL after 2 s). The returned
   * execa subprocess never rejects.
   */
  spawn(ns: string, cmd: string[], opts?: SpawnOptions): ResultPromise;
  /** TCP/UDP probe from inside a namespace; see probe.ts for the result semantics. */
  probe(ns: string, opts: ProbeOptions): Promise<ProbeResult>;
  /** Start podserver in the given pods (default: all that are not running) and wait until they listen. */
  startPodServers(names?: string[]): Promise<void>;
  /** Stop podserver in the given pods (default: all); their ports then answer 'refused'. */
  stopPodServers(names?: string[]): Promise<void>;
  /** Human-readable layout with the actual namespace names and addresses. */
  describe(): string;
  /** Kill everything in the namespaces and delete them. Idempotent. */
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------
// helpers

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await execa(cmd, args, {
    reject: false,
    input: opts.input,
    timeout: opts.timeoutMs ?? 30000,
    env: opts.env,
    stripFinalNewline: false,
  });
  const res: ExecResult = {
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    exitCode: typeof r.exitCode === 'number' ? r.exitCode : -1,
  };
  if (opts.check && res.exitCode !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.exitCode}): ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return res;
}

/** Run `ip [-n ns] -batch -` with the given command lines; throws on the first error. */
async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  const r = await run('ip', args, { input: lines.join('\n') + '\n' });
  if (r.exitCode !== 0) {
    throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}\n--- batch ---\n${lines.join('\n')}`);
  }
}

/** Run a command inside a network namespace. Never throws unless opts.check is set. */
export function execInNs(ns: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', ns, ...cmd], opts);
}

// ---------------------------------------------------------------------------
// locating the helper scripts (compiled sibling .js, or transpiled .ts)

const HERE = fileURLToPath(import.meta.url);
const HERE_DIR = path.dirname(HERE);
const SCRIPTS = ['podserver', 'probe'] as const;
let scriptDir: Promise<string> | undefined;

/**
 * Directory holding runnable `podserver.js` and `probe.js`: this module's own
 * directory when it runs compiled (dist/scripts/netns/), otherwise a cache
 * directory with both .ts files transpiled by `typescript` (keyed by content hash).
 */
function resolveScriptDir(): Promise<string> {
  if (!scriptDir) {
    scriptDir = resolveScriptDirUncached();
    scriptDir.catch(() => {
      scriptDir = undefined;
    });
  }
  return scriptDir;
}

async function resolveScriptDirUncached(): Promise<string> {
  if (HERE.endsWith('.js') && SCRIPTS.every((n) => existsSync(path.join(HERE_DIR, `${n}.js`)))) return HERE_DIR;
  const sources = await Promise.all(SCRIPTS.map((n) => fsp.readFile(path.join(HERE_DIR, `${n}.ts`), 'utf8')));
  const hash = createHash('sha256').update(sources.join('\0')).digest('hex').slice(0, 16);
  const root = path.join(os.tmpdir(), 'kube-proxy-ts-netns');
  const dir = path.join(root, hash);
  if (existsSync(path.join(dir, 'package.json'))) return dir;
  const tsMod = (await import('typescript')) as unknown as { default?: typeof import('typescript') };
  const ts = (tsMod.default ?? tsMod) as typeof import('typescript');
  const tmp = path.join(root, `.tmp-${hash}-${process.pid}-${Date.now()}`);
  await fsp.mkdir(tmp, { recursive: true });
  await Promise.all(
    SCRIPTS.map((n, i) =>
      fsp.writeFile(
        path.join(tmp, `${n}.js`),
        ts.transpileModule(sources[i]!, {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
          fileName: path.join(HERE_DIR, `${n}.ts`),
        }).outputText,
      ),
    ),
  );
  // package.json last: its presence marks a complete directory
  await fsp.writeFile(path.join(tmp, 'package.json'), '{"type":"module"}\n');
  try {
    await fsp.rename(tmp, dir); // atomic; parallel test processes may race here
  } catch {
    await fsp.rm(tmp, { recursive: true, force: true }); // someone else won
    if (!existsSync(path.join(dir, 'package.json'))) throw new Error(`could not populate ${dir}`);
  }
  return dir;
}

/** Absolute path of a runnable .js for `scripts/netns/<name>.ts` (compiled or transpiled on the fly). */
export async function resolveScript(name: 'podserver' | 'probe'): Promise<string> {
  return path.join(await resolveScriptDir(), `${name}.js`);
}

// ---------------------------------------------------------------------------
// processes inside namespaces

function nsInode(ns: string): number | undefined {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return undefined;
  }
}

/** PIDs of all processes whose network namespace is one of `namespaces` (like `ip netns pids`). */
export function pidsInNamespaces(namespaces: string[]): number[] {
  const inodes = new Set<string>();
  for (const ns of namespaces) {
    const ino = nsInode(ns);
    if (ino !== undefined) inodes.add(`net:[${ino}]`);
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${e}/ns/net`))) pids.push(pid);
    } catch {
      /* gone or not ours to read */
    }
  }
  return pids;
}

function killPids(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killAndWait(pids: number[], graceMs: number): Promise<void> {
  if (pids.length === 0) return;
  killPids(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(20);
    alive = alive.filter(isAlive);
  }
  killPids(alive, 'SIGKILL');
}

function unrefChild(child: ChildProcess): void {
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) {
    (s as unknown as net.Socket | null)?.unref?.();
  }
}

/** List namespace names (from /run/netns) equal to `prefix` or starting with `prefix-`. */
export function listNamespacesWithPrefix(prefix: string): string[] {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  return names.filter((n) => n === prefix || n.startsWith(`${prefix}-`)).sort();
}

async function deleteNamespaces(namespaces: string[]): Promise<void> {
  const existing = namespaces.filter((n) => existsSync(`/run/netns/${n}`));
  if (existing.length === 0) return;
  // Processes keep a namespace (and its veths / conntrack) alive after `netns del`.
  await killAndWait(pidsInNamespaces(existing), 1000);
  await run('ip', ['-force', '-batch', '-'], { input: existing.map((n) => `netns del ${n}`).join('\n') + '\n' });
  const left = existing.filter((n) => existsSync(`/run/netns/${n}`));
  if (left.length > 0) throw new Error(`could not delete network namespaces: ${left.join(', ')}`);
}

/**
 * Remove every namespace named `<prefix>` or `<prefix>-*` (leftovers of a
 * crashed run), killing the processes inside them first.
 */
export async function destroyAllWithPrefix(prefix: string): Promise<void> {
  if (!NAME_RE.test(prefix)) throw new Error(`invalid prefix ${JSON.stringify(prefix)}`);
  await deleteNamespaces(listNamespacesWithPrefix(prefix));
}

// ---------------------------------------------------------------------------
// probe helpers: one long-lived process per namespace (podserver in pods, probe.js --serve elsewhere)

/**
 * Command line running a helper script with plain node. NODE_OPTIONS is dropped:
 * test runners put loaders there (tap's @tapjs/processinfo injects an --import
 * into every child, tripling node's start-up time), and our helpers need none.
 */
export function nodeCmd(script: string, ...args: string[]): string[] {
  return ['env', '-u', 'NODE_OPTIONS', process.execPath, script, ...args];
}

interface Pending {
  resolve: (r: ProbeResult) => void;
  timer: NodeJS.Timeout;
}

class ProbeHelper {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited_ = false;

  private constructor(
    readonly ns: string,
    private readonly child: ChildProcess,
  ) {}

  /** Spawn a standalone `probe.js --serve` in `ns`. */
  static async start(ns: string): Promise<ProbeHelper> {
    const script = await resolveScript('probe');
    const child = cpSpawn('ip', ['netns', 'exec', ns, ...nodeCmd(script, '--serve')], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return ProbeHelper.attach(ns, child, `probe helper in ${ns}`);
  }

  /** Wrap a child speaking the probe protocol (probe.js --serve, podserver.js --probe-stdio); waits for READY. */
  static async attach(ns: string, child: ChildProcess, what: string): Promise<ProbeHelper> {
    const helper = new ProbeHelper(ns, child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.stdin?.on('error', () => {});
    const rl = readline.createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not start: ${stderr}`)), 15000);
      const onLine = (line: string): void => {
        if (line.startsWith('READY')) {
          clearTimeout(timer);
          rl.off('line', onLine);
          rl.on('line', (l) => helper.onLine(l));
          resolve();
        }
      };
      rl.on('line', onLine);
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited (${code ?? sig}): ${stderr.trim()}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    child.on('exit', () => helper.onExit(stderr));
    unrefChild(child);
    return helper;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves when the process has exited. */
  readonly exited = (): Promise<void> =>
    this.exitedFlag() ? Promise.resolve() : new Promise((r) => this.child.once('exit', () => r()));

  private exitedFlag(): boolean {
    return this.exited_ || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  get alive(): boolean {
    return !this.exitedFlag();
  }

  private onLine(line: string): void {
    let msg: { id: number; result: ProbeResult };
    try {
      msg = JSON.parse(line) as { id: number; result: ProbeResult };
    } catch {
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    p.resolve(msg.result);
  }

  private onExit(stderr: string): void {
    this.exited_ = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: 'probe-helper-exited', detail: stderr.trim(), ms: 0 });
      this.pending.delete(id);
    }
  }

  probe(o: ProbeOptions): Promise<ProbeResult> {
    const id = this.nextId++;
    const timeoutMs = o.timeoutMs ?? 3000;
    return new Promise<ProbeResult>((resolve) => {
      // This (ref'ed) timer also keeps the event loop alive while we wait.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: 'probe-helper-timeout', ms: timeoutMs + 5000 });
      }, timeoutMs + 5000);
      this.pending.set(id, { resolve, timer });
      this.child.stdin!.write(JSON.stringify({ ...o, timeoutMs, id }) + '\n');
    });
  }

  /** Close stdin (the process finishes probes in flight and exits); SIGKILL after graceMs. */
  async close(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited();
    clearTimeout(t);
  }
}

const helpers = new Map<string, Promise<ProbeHelper>>();

function getHelper(ns: string): Promise<ProbeHelper> {
  const existing = helpers.get(ns);
  if (existing) {
    const retry = (): Promise<ProbeHelper> => {
      if (helpers.get(ns) === existing) helpers.delete(ns);
      return getHelper(ns);
    };
    return existing.then((h) => (h.alive ? h : retry()), retry);
  }
  const p = ProbeHelper.start(ns);
  registerHelper(ns, p);
  return p;
}

/**
 * Probe `host:port` over TCP (HTTP GET) or UDP from inside network namespace `ns`.
 * Resolves (never rejects for network errors) with `{ ok: true, pod, from, ... }`
 * or `{ ok: false, error: 'refused' | 'timeout' | ..., ms }`.
 */
export async function probe(ns: string, opts: ProbeOptions): Promise<ProbeResult> {
  const h = await getHelper(ns);
  return h.probe(opts);
}

/** Make `helper` the probe helper of `ns`, retiring any previous one. */
function registerHelper(ns: string, helper: Promise<ProbeHelper>): void {
  const prev = helpers.get(ns);
  helpers.set(ns, helper);
  helper.catch(() => {
    if (helpers.get(ns) === helper) helpers.delete(ns);
  });
  if (prev) void prev.then((h) => h.close(), () => {});
}

/** Stop the probe helpers (and so pod servers) of the given namespaces (default: all). */
export async function closeProbeHelpers(namespaces?: string[]): Promise<void> {
  const list = namespaces ?? [...helpers.keys()];
  await Promise.all(
    list.map(async (ns) => {
      const p = helpers.get(ns);
      helpers.delete(ns);
      if (p) {
        try {
          await (await p).close();
        } catch {
          /* failed to start anyway */
        }
      }
    }),
  );
}

// ---------------------------------------------------------------------------
// pod servers

/** A running podserver; it is also the probe helper of its pod's namespace. */
type PodServer = ProbeHelper;

function startPodServer(pod: TopologyPod): Promise<PodServer> {
  const p = (async () => {
    const script = await resolveScript('podserver');
    const child = cpSpawn(
      'ip',
      ['netns', 'exec', pod.ns, ...nodeCmd(script, '--name', pod.name, '--probe-stdio')],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    return ProbeHelper.attach(pod.ns, child, `podserver ${pod.name}`);
  })();
  registerHelper(pod.ns, p);
  return p;
}

async function stopPodServer(s: PodServer): Promise<void> {
  // Its namespace falls back to a standalone probe helper on the next probe (getHelper checks `alive`).
  await s.close(2000);
}

// ---------------------------------------------------------------------------
// watchdog: cleans up if this process dies without destroy()

const WATCHDOG_SCRIPT = `
trap '' INT TERM HUP
read -r cmd
[ "$cmd" = done ] && exit 0
for n in "$@"; do
  pids=$(ip netns pids "$n" 2>/dev/null)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
done
for n in "$@"; do ip netns del "$n" 2>/dev/null; done
exit 0
`;

function startWatchdog(namespaces: string[]): ChildProcess {
  const child = cpSpawn('sh', ['-c', WATCHDOG_SCRIPT, 'kpt-netns-watchdog', ...namespaces], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true, // own session: a Ctrl-C to our process group does not kill it
  });
  child.stdin?.on('error', () => {});
  child.on('error', () => {});
  unrefChild(child);
  return child;
}

// ---------------------------------------------------------------------------

function describeLayout(t: {
  nodeNs: string;
  clientNs: string;
  pods: TopologyPod[];
  ipv6: boolean;
  extraClientIps: string[];
}): string {
  const extra = t.extraClientIps.length > 0 ? ` (+ ${t.extraClientIps.join(', ')})` : '';
  const lines = [
    `client  ns ${t.clientNs}: eth0 ${CLIENT_IP}/24${t.ipv6 ? `, ${CLIENT_IP6}/64` : ''}${extra};` +
      ` routes ${EXTERNAL_CIDR}, ${SERVICE_CIDR}, ${CLUSTER_CIDR} via ${NODE_IP}` +
      (t.ipv6 ? `; ${EXTERNAL_CIDR6}, ${SERVICE_CIDR6}, ${CLUSTER_CIDR6} via ${NODE_IP6}` : ''),
    `node    ns ${t.nodeNs}: eth0 ${NODE_IP}/24${t.ipv6 ? `, ${NODE_IP6}/64` : ''}, default via ${CLIENT_IP}` +
      `${t.ipv6 ? ` and ${CLIENT_IP6}` : ''}; ip_forward=1${t.ipv6 ? ', ipv6 forwarding=1' : ''};` +
      ` ${NODE_POD_SIDE_IP}/32 on every pod veth (proxy_arp=1)` +
      (t.ipv6 ? `, ${NODE_POD_SIDE_IP6}/128 and ${POD_GATEWAY6}/64 too` : ''),
  ];
  for (const p of t.pods) {
    const v6 = p.ip6 ? `, ${p.ip6}/128 default via ${POD_GATEWAY6}` : '';
    lines.push(
      `pod     ns ${p.ns}: eth0 ${p.ip}/32 default via ${POD_GATEWAY} onlink${v6}; node side ${p.hostVeth}` +
        ` (route ${p.ip}/32${p.ip6 ? `, ${p.ip6}/128` : ''}); podserver ${p.name} tcp/${POD_TCP_PORT} (HTTP) udp/${POD_UDP_PORT}` +
        (p.nodeName !== NODE_NAME ? `; claims node ${p.nodeName}` : ''),
    );
  }
  return lines.join('\n');
}

/** Which live topology (of this process) created a namespace. */
const nsOwner = new Map<string, symbol>();

/** Build the topology (see the comment at the top of this file). Needs root. */
export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  const { prefix } = opts;
  if (!NAME_RE.test(prefix)) throw new Error(`invalid prefix ${JSON.stringify(prefix)}`);
  const ipv6 = opts.ipv6 ?? opts.pods.some((p) => p.ip6 !== undefined);
  const seenNames = new Set<string>();
  const seenIps = new Set<string>();
  const reserved = new Set([NODE_POD_SIDE_IP, NODE_IP, CLIENT_IP, NODE_POD_SIDE_IP6, NODE_IP6, CLIENT_IP6]);
  const podIp6s: (string | undefined)[] = [];
  for (const p of opts.pods) {
    if (!NAME_RE.test(p.name)) throw new Error(`invalid pod name ${JSON.stringify(p.name)}`);
    if (!IPV4_RE.test(p.ip)) throw new Error(`invalid pod IP ${JSON.stringify(p.ip)} for ${p.name}`);
    if (p.nodeName !== undefined && !NAME_RE.test(p.nodeName)) throw new Error(`invalid node name ${JSON.stringify(p.nodeName)} for ${p.name}`);
    let ip6: string | undefined;
    if (ipv6) {
      ip6 = p.ip6 !== undefined ? canonicalIp6(p.ip6) : podIp6(p.ip);
      if (!ip6 || ip6.startsWith('fe80:') || ip6 === '::' || ip6 === '::1') throw new Error(`invalid pod IPv6 ${JSON.stringify(p.ip6)} for ${p.name}`);
    } else if (p.ip6 !== undefined) {
      throw new Error(`pod ${p.name} has ip6 but the topology is not dual-stack (ipv6: false)`);
    }
    podIp6s.push(ip6);
    for (const a of [p.ip, ip6]) {
      if (a === undefined) continue;
      if (reserved.has(a)) throw new Error(`pod IP ${a} is reserved for the node or the client`);
      if (seenIps.has(a)) throw new Error(`duplicate pod IP ${a}`);
      seenIps.add(a);
    }
    if (seenNames.has(p.name)) throw new Error(`duplicate pod name ${p.name}`);
    seenNames.add(p.name);
  }
  if (opts.pods.length > 9999) throw new Error('too many pods');

  const extraClientIps = (opts.extraClientIps ?? (ipv6 ? [CLIENT_IP2, CLIENT_IP6_2] : [CLIENT_IP2])).map((a) => {
    if (IPV4_RE.test(a)) {
      if (!inIpv4Prefix24(a, OUTSIDE_CIDR)) throw new Error(`extra client IP ${a} is not in ${OUTSIDE_CIDR}`);
      return a;
    }
    const c = canonicalIp6(a);
    if (!c || !ipv6 || !inIp6Prefix64(c, OUTSIDE_CIDR6)) {
      throw new Error(`extra client IP ${a} is not in ${OUTSIDE_CIDR}${ipv6 ? ` or ${OUTSIDE_CIDR6}` : ' (IPv6 needs ipv6: true)'}`);
    }
    return c;
  });
  for (const a of extraClientIps) {
    if (reserved.has(a) || seenIps.has(a) || a.endsWith('.0') || a.endsWith('.255')) throw new Error(`extra client IP ${a} is reserved or taken`);
    seenIps.add(a);
  }

  const nodeNs = `${prefix}-node`;
  const clientNs = `${prefix}-client`;
  const pods: TopologyPod[] = opts.pods.map((p, i) => ({
    name: p.name,
    ip: p.ip,
    ...(podIp6s[i] !== undefined ? { ip6: podIp6s[i] } : {}),
    nodeName: p.nodeName ?? NODE_NAME,
    ns: `${prefix}-pod-${p.name}`,
    hostVeth: `vpod${i}`,
  }));
  const namespaces = [nodeNs, clientNs, ...pods.map((p) => p.ns)];

  const existing = listNamespacesWithPrefix(prefix);
  if (existing.length > 0) {
    if (!opts.replaceExisting) {
      throw new Error(
        `network namespaces with prefix ${prefix} already exist (${existing.join(', ')}); ` +
          `call destroyAllWithPrefix(${JSON.stringify(prefix)}) or pass replaceExisting: true`,
      );
    }
    await destroyAllWithPrefix(prefix);
  }

  const owner = Symbol(prefix);
  const podServers = new Map<string, PodServer>();
  const spawned = new Set<ResultPromise>();
  let watchdog: ChildProcess | undefined;
  let destroyed = false;
  let destroying: Promise<void> | undefined;

  const destroy = (): Promise<void> => {
    if (!destroying) {
      destroying = (async () => {
        destroyed = true;
        // Namespaces taken over by a later topology in this process (replaceExisting) are not ours anymore.
        const mine = namespaces.filter((n) => nsOwner.get(n) === owner);
        for (const n of mine) nsOwner.delete(n);
        // probe helpers (podservers included) and tracked spawns: SIGTERM, SIGKILL after a grace period
        const helperList = mine.map((ns) => helpers.get(ns)).filter((h) => h !== undefined);
        for (const ns of mine) helpers.delete(ns);
        const pids: number[] = [];
        for (const h of await Promise.allSettled([...helperList, ...podServers.values()].map((x) => Promise.resolve(x)))) {
          if (h.status === 'fulfilled' && h.value.pid && h.value.alive) pids.push(h.value.pid);
        }
        podServers.clear();
        for (const sp of spawned) if (sp.pid && sp.exitCode === null && sp.signalCode === null) pids.push(sp.pid);
        spawned.clear();
        await killAndWait(pids, 2000);
        await deleteNamespaces(mine);
        if (watchdog) {
          watchdog.stdin?.end('done\n');
          watchdog = undefined;
        }
      })();
    }
    return destroying;
  };

  try {
    // 1. namespaces
    // (owner + watchdog first: a partially failed batch must be cleaned up too)
    for (const n of namespaces) nsOwner.set(n, owner);
    watchdog = startWatchdog(namespaces);
    await ipBatch(undefined, namespaces.map((n) => `netns add ${n}`));

    // Processes start while the network is being wired: pod servers bind
    // 0.0.0.0, and node startup is the slowest part of all this.
    const warm: Promise<ProbeHelper>[] = [];
    if (opts.warmProbes ?? true) {
      for (const ns of [nodeNs, clientNs]) {
        const h = ProbeHelper.start(ns);
        registerHelper(ns, h);
        warm.push(h);
      }
    }
    const wantServers = opts.startPodServers ?? true;
    const serversReady = wantServers
      ? Promise.allSettled(
          pods.map(async (p) => {
            const s = await startPodServer(p);
            if (destroyed) {
              await stopPodServer(s);
              return;
            }
            podServers.set(p.name, s);
          }),
        )
      : Promise.resolve([]);

    // 2. node side: outside link and all pod veths (created directly in the target namespaces)
    // Dual-stack: every IPv6 address is added with `nodad` and the kernel's own
    // link-local addresses are turned off (addrgenmode none) in favour of fixed
    // ones, also `nodad`: duplicate address detection would otherwise keep each
    // new address "tentative" (unusable: bind() fails with EADDRNOTAVAIL, no
    // NDP answers) for about a second. The fixed link-locals are needed: the
    // kernel sends a neighbour solicitation only from a link-local address of
    // the interface (or from the packet's own source if that is on the
    // interface), so without them forwarded packets towards a neighbour not yet
    // resolved (e.g. the client's 2001:db8:1::3) are silently stuck.
    const nodeLines = [
      'link set lo up',
      `link add eth0 type veth peer name eth0 netns ${clientNs}`,
      `addr add ${NODE_IP}/24 dev eth0`,
      ...(ipv6
        ? ['link set eth0 addrgenmode none', `addr add fe80::1/64 dev eth0 nodad`, `addr add ${NODE_IP6}/64 dev eth0 nodad`]
        : []),
      'link set eth0 up',
      `route add default via ${CLIENT_IP} dev eth0 onlink`,
      ...(ipv6 ? [`route add ::/0 via ${CLIENT_IP6} dev eth0`] : []),
    ];
    for (const p of pods) {
      nodeLines.push(
        `link add ${p.hostVeth} type veth peer name eth0 netns ${p.ns}`,
        `addr add ${NODE_POD_SIDE_IP}/32 dev ${p.hostVeth}`,
      );
      if (p.ip6) {
        nodeLines.push(
          `link set ${p.hostVeth} addrgenmode none`,
          `addr add ${POD_GATEWAY6}/64 dev ${p.hostVeth} nodad`,
          `addr add ${NODE_POD_SIDE_IP6}/128 dev ${p.hostVeth} nodad`,
        );
      }
      nodeLines.push(`link set ${p.hostVeth} up`, `route add ${p.ip}/32 dev ${p.hostVeth} scope link src ${NODE_POD_SIDE_IP}`);
      if (p.ip6) nodeLines.push(`route add ${p.ip6}/128 dev ${p.hostVeth} src ${NODE_POD_SIDE_IP6}`);
    }
    await ipBatch(nodeNs, nodeLines);

    // 3. sysctls, client and pods in parallel
    const sysctls = [
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.default.send_redirects=0',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      ...pods.flatMap((p) => [
        `net.ipv4.conf.${p.hostVeth}.proxy_arp=1`,
        `net.ipv4.conf.${p.hostVeth}.send_redirects=0`,
        `net.ipv4.conf.${p.hostVeth}.rp_filter=0`,
        // proxy ARP answers are otherwise delayed by up to 0.8 s (random)
        `net.ipv4.neigh.${p.hostVeth}.proxy_delay=0`,
      ]),
      // IPv6: forwarding on every interface (there is no rp_filter / send_redirects
      // knob to turn off; nothing in this layout makes the node send a redirect
      // except hairpin, which pods ignore).
      ...(ipv6 ? ['net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.default.forwarding=1'] : []),
    ];
    const clientLines = [
      'link set lo up',
      `addr add ${CLIENT_IP}/24 dev eth0`,
      // Secondary IPv4 addresses are never picked as a default source.
      ...extraClientIps.filter((a) => !a.includes(':')).map((a) => `addr add ${a}/24 dev eth0`),
      ...(ipv6
        ? [
            'link set eth0 addrgenmode none',
            'addr add fe80::2/64 dev eth0 nodad',
            `addr add ${CLIENT_IP6}/64 dev eth0 nodad`,
            // Deprecated (preferred_lft 0): never a default source, still usable when bound.
            ...extraClientIps.filter((a) => a.includes(':')).map((a) => `addr add ${a}/64 dev eth0 nodad preferred_lft 0`),
          ]
        : []),
      'link set eth0 up',
      ...[EXTERNAL_CIDR, SERVICE_CIDR, CLUSTER_CIDR].map((c) => `route add ${c} via ${NODE_IP} dev eth0 onlink`),
      ...(ipv6 ? [EXTERNAL_CIDR6, SERVICE_CIDR6, CLUSTER_CIDR6].map((c) => `route add ${c} via ${NODE_IP6} dev eth0`) : []),
    ];
    const podLines = (p: TopologyPod): string[] => [
      'link set lo up',
      `addr add ${p.ip}/32 dev eth0`,
      ...(p.ip6
        ? ['link set eth0 addrgenmode none', `addr add ${POD_LINK_LOCAL6}/64 dev eth0 nodad`, `addr add ${p.ip6}/128 dev eth0 nodad`]
        : []),
      'link set eth0 up',
      `route add ${POD_GATEWAY} dev eth0 scope link`,
      `route add default via ${POD_GATEWAY} dev eth0 onlink`,
      ...(p.ip6 ? [`route add ::/0 via ${POD_GATEWAY6} dev eth0`] : []),
    ];
    await Promise.all([
      execInNs(nodeNs, ['sysctl', '-q', '-w', ...sysctls], { check: true }),
      ipBatch(clientNs, clientLines),
      ...pods.map((p) => ipBatch(p.ns, podLines(p))),
    ]);

    const results = [...(await serversReady), ...(await Promise.allSettled(warm))];
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  } catch (err) {
    await destroy().catch(() => {});
    throw err;
  }

  const topo: Topology = {
    prefix,
    nodeNs,
    clientNs,
    pods,
    nodeIp: NODE_IP,
    clientIp: CLIENT_IP,
    nodePodSideIp: NODE_POD_SIDE_IP,
    ipv6,
    ...(ipv6 ? { nodeIp6: NODE_IP6, clientIp6: CLIENT_IP6, nodePodSideIp6: NODE_POD_SIDE_IP6 } : {}),
    extraClientIps,
    namespaces,
    pod(name: string): TopologyPod {
      const p = pods.find((x) => x.name === name);
      if (!p) throw new Error(`no pod ${name} in topology ${prefix}`);
      return p;
    },
    exec: execInNs,
    spawn(ns: string, cmd: string[], sopts: SpawnOptions = {}): ResultPromise {
      if (destroyed) throw new Error('topology destroyed');
      const sp = execa('ip', ['netns', 'exec', ns, ...cmd], {
        reject: false,
        env: sopts.env,
        cwd: sopts.cwd,
        stdio: sopts.stdio ?? 'pipe',
        buffer: (sopts.stdio ?? 'pipe') === 'pipe',
      }) as unknown as ResultPromise;
      spawned.add(sp);
      void Promise.resolve(sp).finally(() => spawned.delete(sp));
      return sp;
    },
    probe(ns: string, popts: ProbeOptions): Promise<ProbeResult> {
      if (destroyed) return Promise.reject(new Error('topology destroyed'));
      if (nsOwner.get(ns) !== undefined && nsOwner.get(ns) !== owner) {
        return Promise.reject(new Error(`namespace ${ns} now belongs to another topology`));
      }
      return probe(ns, popts);
    },
    async startPodServers(names?: string[]): Promise<void> {
      if (destroyed) throw new Error('topology destroyed');
      const list = (names ?? pods.map((p) => p.name)).filter((n) => !podServers.get(n)?.alive);
      await Promise.all(
        list.map(async (n) => {
          const s = await startPodServer(topo.pod(n));
          podServers.set(n, s);
        }),
      );
    },
    async stopPodServers(names?: string[]): Promise<void> {
      const list = names ?? [...podServers.keys()];
      await Promise.all(
        list.map(async (n) => {
          const s = podServers.get(n);
          podServers.delete(n);
          if (s) await stopPodServer(s);
        }),
      );
    },
    describe(): string {
      return describeLayout({ nodeNs, clientNs, pods, ipv6, extraClientIps });
    },
    destroy,
  };
  return topo;
}
