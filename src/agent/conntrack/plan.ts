/**
 * Which conntrack entries to delete after a sync, for UDP services (pure).
 *
 * Netfilter NAT decides once per flow, on its first packet; later packets
 * follow the conntrack entry. A UDP "flow" (same 5-tuple) can last forever
 * (a DNS client reusing its source port, a VXLAN or WireGuard tunnel, …), so
 * after the rules change, upstream kube-proxy deletes the entries that would
 * otherwise keep traffic on a path the rules no longer choose
 * (pkg/proxy/conntrack/cleanup.go and the endpoints change tracker):
 *
 * Everything is decided per *frontend*: a service IP (ClusterIP, external
 * IP, LoadBalancer IP) with the service port, or a NodePort (any node
 * address), with the set of endpoints (`ip:port`) serving it before and after.
 *
 * 1. **Endpoint gone.** An endpoint that was serving a frontend and no longer
 *    is (removed, serving=false, or its port changed): delete the frontend's
 *    entries DNATed to it (`--reply-src IP --reply-port-src PORT`), so the
 *    client's next packet is load balanced afresh.
 * 2. **Newly active.** A frontend that had no serving endpoint (or did not
 *    exist) and now has one: traffic sent meanwhile may have created entries
 *    that were not DNATed (they would keep bypassing the new DNAT rules);
 *    delete every entry to it.
 * 3. **Frontend removed.** A service port deleted, or a service IP, port or
 *    NodePort taken off one: delete every entry to it (the DNAT rule is gone,
 *    but its entries would keep DNATing).
 *
 * As upstream, "serving" is the endpoint's serving condition alone: traffic
 * policies, topology and the terminating state are deliberately ignored, so a
 * UDP flow survives a policy change or a rolling update exactly as a TCP
 * connection does. Only UDP is cleaned (as upstream), unless `protocols` says
 * otherwise (SCTP may be added). Endpoints are compared as `ip:port`, so a
 * target port change counts as "gone" too.
 *
 * `prev` must be what the kernel had before the sync (the snapshot of the
 * last successful sync), `next` what it has now, and `changed` the keys of the
 * service ports that changed in between (a superset is fine: unchanged ports
 * produce no deletion). Call it only after the new rules are in the kernel:
 * a packet arriving between the deletion and the new rules would otherwise
 * recreate the stale entry.
 */
import type { Endpoint, IPFamily, Protocol, ServicePort } from '../model/types.js';

export type ConntrackProtocol = 'udp' | 'sctp';

export type ConntrackDeletionReason = 'endpoint-gone' | 'newly-active' | 'frontend-removed';

/** One `conntrack -D` invocation: every field given is a filter, all must match. */
export interface ConntrackDeletion {
  family: IPFamily;
  protocol: ConntrackProtocol;
  /** Original destination: a service IP. Absent for NodePort deletions (any node address). */
  origDst?: string;
  /** Original destination port: the service port, or the NodePort. */
  origPortDst: number;
  /** Reply source, i.e. the DNAT target: the endpoint's IP. Absent: every entry to the frontend. */
  replySrc?: string;
  /** The endpoint's port (with replySrc). */
  replyPortSrc?: number;
  reason: ConntrackDeletionReason;
  /** The service port's display name (`namespace/name:port`), for logs. */
  service: string;
}

export interface PlanOptions {
  /** Protocols to clean (default UDP only, as upstream). */
  protocols?: readonly Protocol[];
}

/** Where traffic to a service port arrives (a service IP and port, or a NodePort), with the endpoints serving it. */
interface Frontend {
  family: IPFamily;
  protocol: ConntrackProtocol;
  origDst?: string;
  port: number;
  service: string;
  serving: Map<string, Endpoint>;
}

function endpointKey(e: Pick<Endpoint, 'address' | 'port'>): string {
  return `${e.address} ${e.port}`;
}

/** Adds the frontends of `sp` to `into`, keyed by family, protocol, IP (or `*` for a NodePort) and port. */
function addFrontends(into: Map<string, Frontend>, sp: ServicePort): void {
  const protocol: ConntrackProtocol = sp.protocol === 'SCTP' ? 'sctp' : 'udp';
  const serving = new Map<string, Endpoint>();
  for (const e of sp.endpoints) if (e.serving) serving.set(endpointKey(e), e);
  const add = (origDst: string | undefined, port: number): void => {
    const key = `${sp.family} ${protocol} ${origDst ?? '*'} ${port}`;
    const existing = into.get(key);
    if (existing) {
      // Two service ports on one frontend (a conflict the API server should prevent): union.
      for (const [k, e] of serving) existing.serving.set(k, e);
      return;
    }
    const f: Frontend = { family: sp.family, protocol, port, service: sp.displayName, serving: new Map(serving) };
    if (origDst !== undefined) f.origDst = origDst;
    into.set(key, f);
  };
  if (sp.port > 0) for (const ip of new Set([sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerIPs])) if (ip !== '') add(ip, sp.port);
  if (sp.nodePort > 0) add(undefined, sp.nodePort);
}

/** The `conntrack` arguments of one deletion (`-D -p udp --orig-dst … [-f ipv6]`). */
export function conntrackArgs(d: ConntrackDeletion): string[] {
  const args = ['-D', '-p', d.protocol];
  if (d.origDst !== undefined) args.push('--orig-dst', d.origDst);
  args.push('--orig-port-dst', String(d.origPortDst));
  if (d.replySrc !== undefined) args.push('--reply-src', d.replySrc);
  if (d.replyPortSrc !== undefined) args.push('--reply-port-src', String(d.replyPortSrc));
  if (d.family === 'IPv6') args.push('-f', 'ipv6');
  return args;
}

function deletion(f: Frontend, reason: ConntrackDeletionReason, ep?: Endpoint): ConntrackDeletion {
  const d: ConntrackDeletion = { family: f.family, protocol: f.protocol, origPortDst: f.port, reason, service: f.service };
  if (f.origDst !== undefined) d.origDst = f.origDst;
  if (ep) {
    d.replySrc = ep.address;
    d.replyPortSrc = ep.port;
  }
  return d;
}

/**
 * The conntrack deletions that the change from `prev` to `next` of the
 * service ports `changed` calls for (see the file comment). Pure.
 *
 * The comparison is per frontend (service IP:port, or NodePort), over all the
 * changed service ports together, so a frontend that moves from one service
 * port to another (e.g. a renamed port) with the same endpoints keeps its flows.
 */
export function planConntrackCleanup(
  prev: ReadonlyMap<string, ServicePort>,
  next: ReadonlyMap<string, ServicePort>,
  changed: Iterable<string>,
  opts: PlanOptions = {},
): ConntrackDeletion[] {
  const protocols = new Set<Protocol>(opts.protocols ?? ['UDP']);
  const before = new Map<string, Frontend>();
  const after = new Map<string, Frontend>();
  for (const key of new Set(changed)) {
    const was = prev.get(key);
    const is = next.get(key);
    if (was && protocols.has(was.protocol)) addFrontends(before, was);
    if (is && protocols.has(is.protocol)) addFrontends(after, is);
  }

  const out: ConntrackDeletion[] = [];
  // 3. frontends that disappeared: every entry to them
  for (const [k, f] of before) if (!after.has(k)) out.push(deletion(f, 'frontend-removed'));
  for (const [k, f] of after) {
    const old = before.get(k);
    // 2. newly active (no serving endpoint before, or a new frontend) with serving endpoints now: every entry
    if (f.serving.size > 0 && (old === undefined || old.serving.size === 0)) {
      out.push(deletion(f, 'newly-active'));
      continue;
    }
    // 1. endpoints that stopped serving: the entries DNATed to them
    if (old === undefined) continue;
    for (const [ek, ep] of old.serving) if (!f.serving.has(ek)) out.push(deletion(f, 'endpoint-gone', ep));
  }
  return out;
}
