/**
 * The shared (top-level) chains every service port contributes rules to, in
 * the order they are written, with the fixed rules each one starts or ends
 * with. Pure.
 */
import ipaddr from 'ipaddr.js';
import type { RenderConfig } from './render.js';
import type { Table } from './restore-input.js';
import { comment, loopbackCIDR, markHex, rule } from './rule-text.js';

/** `table/CHAIN`, e.g. `nat/KUBE-SERVICES`. */
export type SharedChainId = string;

export interface SharedChain {
  id: SharedChainId;
  table: Table;
  name: string;
  /** Fixed rules before the service ports' rules. */
  head(cfg: RenderConfig): string[];
  /** Fixed rules after them. */
  tail(cfg: RenderConfig): string[];
}

const none = (): string[] => [];

const isLoopback = (ip: string): boolean => ipaddr.parse(ip).range() === 'loopback';

/**
 * Whether NodePorts are served on 127.0.0.0/8, as upstream decides it: never
 * for IPv6; for IPv4 when iptables.localhostNodePorts is on (the default) and
 * --nodeport-addresses (if set) includes a loopback address. When it is, the
 * agent must set net.ipv4.conf.all.route_localnet=1 and the KUBE-FIREWALL
 * guard rule is written.
 */
export function localhostNodePortsEnabled(cfg: RenderConfig): boolean {
  if ((cfg.family ?? 'IPv4') === 'IPv6' || cfg.localhostNodePorts === false) return false;
  return cfg.nodePortAddresses === undefined || cfg.nodePortAddresses.some(isLoopback);
}

const NODEPORTS_COMMENT = comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain');

/** The tail of nat KUBE-SERVICES: which destinations are NodePort addresses. */
function nodePortsTail(cfg: RenderConfig): string[] {
  const family = cfg.family ?? 'IPv4';
  if (cfg.nodePortAddresses === undefined) {
    // Every local address; localhost NodePorts never work on IPv6, and only with route_localnet on IPv4.
    const guard = family === 'IPv6' || !localhostNodePortsEnabled(cfg) ? `! -d ${loopbackCIDR(family)}` : '';
    return [rule('-A KUBE-SERVICES', NODEPORTS_COMMENT, '-m addrtype --dst-type LOCAL', guard, '-j KUBE-NODEPORTS')];
  }
  const localhost = localhostNodePortsEnabled(cfg);
  return cfg.nodePortAddresses
    .filter((ip) => !isLoopback(ip) || localhost)
    .map((ip) => rule('-A KUBE-SERVICES', NODEPORTS_COMMENT, `-d ${ip}`, '-j KUBE-NODEPORTS'));
}

/**
 * kubelet's anti-martian rule, which kube-proxy also writes when it serves
 * localhost NodePorts (route_localnet=1 would otherwise let the network reach
 * services bound to 127.0.0.1; https://issue.k8s.io/90259).
 */
function localnetGuard(cfg: RenderConfig): string[] {
  if (!localhostNodePortsEnabled(cfg)) return [];
  return [
    rule(
      '-A KUBE-FIREWALL',
      comment('block incoming localnet connections'),
      '-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    ),
  ];
}

function shared(table: Table, name: string, head: SharedChain['head'] = none, tail: SharedChain['tail'] = none): SharedChain {
  return { id: `${table}/${name}`, table, name, head, tail };
}

export const SHARED_CHAINS: readonly SharedChain[] = [
  shared('filter', 'KUBE-SERVICES'),
  shared('filter', 'KUBE-EXTERNAL-SERVICES'),
  shared('filter', 'KUBE-NODEPORTS'),
  shared('filter', 'KUBE-PROXY-FIREWALL'),
  // kubelet's chain (never deleted by cleanup); declared and rewritten whole, as upstream does.
  shared('filter', 'KUBE-FIREWALL', localnetGuard),
  shared('filter', 'KUBE-FORWARD', (cfg) => {
    const mark = markHex(cfg.masqueradeBit);
    return [
      `-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP`,
      `-A KUBE-FORWARD ${comment('kubernetes forwarding rules')} -m mark --mark ${mark}/${mark} -j ACCEPT`,
      `-A KUBE-FORWARD ${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
  }),
  shared('nat', 'KUBE-MARK-MASQ', (cfg) => [`-A KUBE-MARK-MASQ -j MARK --or-mark ${markHex(cfg.masqueradeBit)}`]),
  shared('nat', 'KUBE-POSTROUTING', (cfg) => {
    const mark = markHex(cfg.masqueradeBit);
    return [
      `-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`,
      // Clear the mark so a re-traversal (e.g. IPsec) does not masquerade twice.
      `-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`,
      `-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE${cfg.randomFully ? ' --random-fully' : ''}`,
    ];
  }),
  shared('nat', 'KUBE-SERVICES', none, nodePortsTail),
  shared('nat', 'KUBE-NODEPORTS'),
];

export const SHARED_BY_ID: ReadonlyMap<SharedChainId, SharedChain> = new Map(SHARED_CHAINS.map((c) => [c.id, c]));
