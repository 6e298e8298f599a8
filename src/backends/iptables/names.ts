/**
 * Chain names and ownership for the iptables backend, following upstream's
 * scheme: a prefix plus the first 16 characters of the base32 of a SHA-256
 * over the service port name and protocol (plus the endpoint for SEP chains),
 * so names match upstream's for the same service.
 */
import crypto, { createHash } from 'node:crypto';
import type { ServicePort } from '../../agent/model/types.js';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const BASE32_CODES = [...BASE32].map((c) => c.charCodeAt(0));

/** Base32 (RFC 4648, no padding) of the leading bits of `bytes`: `chars` characters, as one flat string. */
function base32(bytes: Uint8Array, chars: number): string {
  const codes = new Array<number>(chars);
  let bits = 0;
  let value = 0;
  let i = 0;
  for (let n = 0; n < chars; n++) {
    if (bits < 5) {
      value = ((value << 8) | (bytes[i++] ?? 0)) & 0xffff;
      bits += 8;
    }
    codes[n] = BASE32_CODES[(value >>> (bits - 5)) & 31]!;
    bits -= 5;
  }
  return String.fromCharCode(...codes);
}

// crypto.hash (Node >= 20.12) is the one-shot digest: about 3x faster than createHash for short inputs.
const sha256: (text: string) => Uint8Array =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (text) => (crypto as unknown as { hash(alg: string, data: string, enc: 'buffer'): Buffer }).hash('sha256', text, 'buffer')
    : (text) => createHash('sha256').update(text).digest();

function hash16(text: string): string {
  // 16 base32 characters need only the first 10 bytes of the digest.
  return base32(sha256(text), 16);
}

/** One hash per service port object, shared by its KUBE-SVC/SVL/EXT/FW names. */
const portHashes = new WeakMap<ServicePort, string>();

function portProtoHash(sp: ServicePort): string {
  let h = portHashes.get(sp);
  if (h === undefined) portHashes.set(sp, (h = hash16(sp.displayName + sp.protocol.toLowerCase())));
  return h;
}

export const svcChain = (sp: ServicePort): string => `KUBE-SVC-${portProtoHash(sp)}`;
export const extChain = (sp: ServicePort): string => `KUBE-EXT-${portProtoHash(sp)}`;
export const fwChain = (sp: ServicePort): string => `KUBE-FW-${portProtoHash(sp)}`;
export const svlChain = (sp: ServicePort): string => `KUBE-SVL-${portProtoHash(sp)}`;
export const sepChain = (sp: ServicePort, endpoint: string): string =>
  `KUBE-SEP-${hash16(sp.displayName + sp.protocol.toLowerCase() + endpoint)}`;

/** The fixed chains this agent creates, per table. */
export const FIXED_CHAINS: Record<'filter' | 'nat', readonly string[]> = {
  filter: ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'],
  nat: ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'],
};

/** Chains created per service port; any chain with these prefixes is ours. */
export const SERVICE_CHAIN_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'] as const;

/** Every chain name kube-proxy owns (in any table), used by cleanup. */
const OWNED_FIXED = new Set([...FIXED_CHAINS.filter, ...FIXED_CHAINS.nat, 'KUBE-PROXY-CANARY']);

export function isOwnedChain(name: string): boolean {
  return OWNED_FIXED.has(name) || SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}

/** kubelet's own canary chain: where it exists, kubelet manages KUBE-FIREWALL. */
export const KUBELET_CANARY_CHAIN = 'KUBE-KUBELET-CANARY';
/** kubelet's anti-martian chain, which this agent also writes when it serves localhost NodePorts. */
export const KUBELET_FIREWALL_CHAIN = 'KUBE-FIREWALL';

/**
 * Which chains cleanup may remove, given the saved state: ours by name, plus
 * KUBE-FIREWALL when no kubelet manages it (no KUBE-KUBELET-CANARY in any
 * table), i.e. when this agent created it. Upstream never removes it, because
 * there it is always kubelet's too.
 */
export function ownedChainsIn(chainsByTable: ReadonlyMap<string, ReadonlySet<string>>): (name: string) => boolean {
  const kubelet = [...chainsByTable.values()].some((cs) => cs.has(KUBELET_CANARY_CHAIN));
  return (name) => isOwnedChain(name) || (!kubelet && name === KUBELET_FIREWALL_CHAIN);
}

export function isServiceChain(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}

export interface JumpRule {
  table: 'filter' | 'nat';
  from: string;
  to: string;
  /** '' for none. */
  comment: string;
  extra: string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'];

/** Rules in the built-in chains that send packets into ours, as upstream installs them. */
export const JUMP_RULES: readonly JumpRule[] = [
  { table: 'filter', from: 'INPUT', to: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: NEW },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: NEW },
  { table: 'filter', from: 'INPUT', to: 'KUBE-NODEPORTS', comment: 'kubernetes health check service ports', extra: [] },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: NEW },
  { table: 'filter', from: 'OUTPUT', to: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: NEW },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-FORWARD', comment: 'kubernetes forwarding rules', extra: [] },
  { table: 'filter', from: 'INPUT', to: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  { table: 'filter', from: 'OUTPUT', to: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: NEW },
  // kubelet's KUBE-FIREWALL (the localnet guard); upstream ensures these jumps too, without a
  // comment, and never deletes them (the chain is not ours: cleanup leaves it).
  { table: 'filter', from: 'INPUT', to: 'KUBE-FIREWALL', comment: '', extra: [] },
  { table: 'filter', from: 'OUTPUT', to: 'KUBE-FIREWALL', comment: '', extra: [] },
  { table: 'nat', from: 'OUTPUT', to: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: [] },
  { table: 'nat', from: 'PREROUTING', to: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: [] },
  { table: 'nat', from: 'POSTROUTING', to: 'KUBE-POSTROUTING', comment: 'kubernetes postrouting rules', extra: [] },
];

export function jumpKey(j: { table: string; from: string; to: string }): string {
  return `${j.table}/${j.from}/${j.to}`;
}
