/**
 * Session affinity (ClientIP) in the shared layout: one timeout set per
 * service port instead of upstream's set and chain per endpoint (6,300 of
 * each at 10,000 services, and nft 1.0.6 reads them all before any change).
 *
 * The set holds `client . endpoint-id`, where the endpoint id is a stable
 * 32-bit number of the endpoint's address and port. nft 1.0.6 cannot put a
 * constant in a concatenation, so the id is written as an expression that
 * always yields it: `numgen random mod 1 offset ID` (0 + ID). The port's
 * policy chain then reads, for endpoints e1..eN:
 *
 *   ip saddr . numgen random mod 1 offset ID1 @affinity-… update @affinity-… { ip saddr . … ID1 } meta l4proto tcp dnat to e1
 *   …                                                                          (a client seen before: same endpoint, timer reset)
 *   numgen random mod N 0 update @affinity-… { ip saddr . … ID1 } meta l4proto tcp dnat to e1
 *   numgen random mod N-1 0 update @affinity-… { … ID2 } … dnat to e2            (1/N each, as iptables' statistic cascade)
 *   …
 *   update @affinity-… { … IDN } meta l4proto tcp dnat to eN
 *
 * as upstream's endpoint chains do: check every endpoint's set first, else
 * pick one at random, and record the client. An endpoint that goes away is
 * no longer checked, so its entries are never used again (they time out).
 * Hairpin masquerade is the shared rule over @hairpin-endpoints. Pure.
 */
import { createHash } from 'node:crypto';
import { endpointString } from '../../agent/model/endpoint-selection.js';
import type { Endpoint, ServicePort } from '../../agent/model/types.js';
import { servicePortNameBase } from './names.js';
import type { AffinitySetSpec, RuleSpec } from './render-service.js';

/** Entries the set may hold (upstream's per-endpoint sets hold 65,535 clients each). */
export const AFFINITY_SET_SIZE = 1_048_576;

export function affinityPortSetName(sp: Pick<ServicePort, 'namespace' | 'name' | 'portName' | 'protocol'>): string {
  return `affinity-${servicePortNameBase(sp)}`;
}

export function affinityPortSet(sp: ServicePort, v6: boolean): AffinitySetSpec {
  return { name: affinityPortSetName(sp), typeOf: `${v6 ? 'ip6' : 'ip'} saddr . numgen random mod 1`, timeout: sp.sessionAffinityTimeoutSeconds, size: AFFINITY_SET_SIZE };
}

/** The endpoint's id: the first 32 bits of the SHA-256 of `address/port` (the same in every sync). */
export function endpointId(ep: Pick<Endpoint, 'address' | 'port'>): number {
  return createHash('sha256').update(`${ep.address}/${ep.port}`).digest().readUInt32BE(0);
}

/** Ids for a port's endpoints, distinct within the port (a collision takes the next free number). */
function endpointIds(eps: readonly Endpoint[]): number[] {
  const used = new Set<number>();
  return eps.map((ep) => {
    let id = endpointId(ep);
    while (used.has(id)) id = (id + 1) >>> 0;
    used.add(id);
    return id;
  });
}

/** A policy chain's endpoint rules: affinity checks, then the random choice, each recording the client. */
export function inlineEndpointRules(setName: string, ipX: string, proto: string, eps: readonly Endpoint[]): RuleSpec[] {
  const ids = endpointIds(eps);
  const key = (i: number): string => `${ipX} saddr . numgen random mod 1 offset ${ids[i]}`;
  const to = (i: number): string => `update @${setName} { ${key(i)} } meta l4proto ${proto} dnat to ${endpointString(eps[i]!)}`;
  const rules: RuleSpec[] = eps.map((_, i) => ({ rule: `${key(i)} @${setName} ${to(i)}` }));
  eps.forEach((_, i) => rules.push({ rule: i === eps.length - 1 ? to(i) : `numgen random mod ${eps.length - i} 0 ${to(i)}` }));
  return rules;
}
