/**
 * The shared (top-level) chains every service port contributes rules to, in
 * the order they are written, with the fixed rules each one starts or ends
 * with. Pure.
 */
import type { RenderConfig } from './render.js';
import type { Table } from './restore-input.js';
import { comment, markHex } from './rule-text.js';

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

function shared(table: Table, name: string, head: SharedChain['head'] = none, tail: SharedChain['tail'] = none): SharedChain {
  return { id: `${table}/${name}`, table, name, head, tail };
}

export const SHARED_CHAINS: readonly SharedChain[] = [
  shared('filter', 'KUBE-SERVICES'),
  shared('filter', 'KUBE-EXTERNAL-SERVICES'),
  shared('filter', 'KUBE-NODEPORTS'),
  shared('filter', 'KUBE-PROXY-FIREWALL'),
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
  shared('nat', 'KUBE-SERVICES', none, () => [
    `-A KUBE-SERVICES ${comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  ]),
  shared('nat', 'KUBE-NODEPORTS'),
];

export const SHARED_BY_ID: ReadonlyMap<SharedChainId, SharedChain> = new Map(SHARED_CHAINS.map((c) => [c.id, c]));
