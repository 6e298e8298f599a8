/**
 * --nodeport-addresses (config `nodePortAddresses`): which of this node's
 * addresses accept NodePort traffic, resolved as upstream kube-proxy does
 * (pkg/proxy/util NodePortAddresses, cmd/kube-proxy "primary"):
 *
 * - `["primary"]` (alone) means the node's primary IP of each family;
 * - otherwise a list of CIDRs; only those of the family being programmed
 *   count; the node's local addresses inside any of them accept NodePorts;
 * - no CIDR of that family (including an empty list, or "primary" on a node
 *   without a primary IP of that family, or a 0.0.0.0/0 / ::/0 entry) means
 *   every local address: the result is `undefined`.
 *
 * Pure. The agent resolves it again whenever the node's addresses change
 * (upstream re-reads the interfaces on every sync) and hands the result to
 * the backend as RenderConfig.nodePortAddresses.
 */
import ipaddr from 'ipaddr.js';
import type { IPFamily } from './types.js';

export const NODE_PORT_ADDRESSES_PRIMARY = 'primary';

function familyOf(a: ipaddr.IPv4 | ipaddr.IPv6): IPFamily {
  return a.kind() === 'ipv6' ? 'IPv6' : 'IPv4';
}

/** A problem with the spec (for config validation), or undefined when it is fine. */
export function nodePortAddressesProblem(spec: readonly string[]): string | undefined {
  if (spec.includes(NODE_PORT_ADDRESSES_PRIMARY)) {
    return spec.length === 1 ? undefined : `"${NODE_PORT_ADDRESSES_PRIMARY}" must be the only value`;
  }
  for (const s of spec) {
    try {
      ipaddr.parseCIDR(s);
    } catch {
      return `${JSON.stringify(s)} is not a CIDR`;
    }
  }
  return undefined;
}

/**
 * The local addresses (of `family`) that accept NodePorts, in the order of
 * `localAddresses`; `undefined` for "every local address". Throws on a spec
 * that nodePortAddressesProblem refuses.
 */
export function resolveNodePortAddresses(
  spec: readonly string[],
  family: IPFamily,
  localAddresses: readonly string[],
  primaryIPs: Partial<Record<IPFamily, string>> = {},
): string[] | undefined {
  const problem = nodePortAddressesProblem(spec);
  if (problem !== undefined) throw new Error(`nodePortAddresses: ${problem}`);
  let cidrs: string[] = [...spec];
  if (spec.length === 1 && spec[0] === NODE_PORT_ADDRESSES_PRIMARY) {
    cidrs = [];
    for (const ip of Object.values(primaryIPs)) {
      if (ip === undefined) continue;
      const a = ipaddr.parse(ip);
      if (a.range() !== 'loopback') cidrs.push(`${ip}/${a.kind() === 'ipv6' ? 128 : 32}`);
    }
  }
  const nets = cidrs.map((c) => ipaddr.parseCIDR(c)).filter(([net]) => familyOf(net) === family);
  if (nets.length === 0 || nets.some(([, prefix]) => prefix === 0)) return undefined;
  const out: string[] = [];
  for (const text of localAddresses) {
    let a: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      a = ipaddr.parse(text);
    } catch {
      continue;
    }
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) continue;
    if (familyOf(a) !== family || !nets.some(([net, prefix]) => net.kind() === a.kind() && a.match(net, prefix))) continue;
    const canonical = a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
    if (!out.includes(canonical)) out.push(canonical);
  }
  return out;
}
