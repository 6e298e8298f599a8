import ipaddr from 'ipaddr.js';
import type { IPFamily } from '../model/types.js';

/** A parsed, normalised IP address (never a pasted string). */
export interface ParsedIP {
  address: string;
  family: IPFamily;
}

/**
 * Strictly parses an IP address as the API server validates them: IPv4 only
 * in four-part decimal form, IPv6 in any valid textual form. Returns the
 * canonical text, or undefined when the input is not an address.
 */
export function parseIP(text: unknown): ParsedIP | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    const parts = text.split('.');
    // Leading zeros are ambiguous (octal in some parsers); the API server refuses them.
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return { address: ipaddr.IPv4.parse(text).toString(), family: 'IPv4' };
  }
  if (text.includes(':') && ipaddr.IPv6.isValid(text) && !text.includes('%')) {
    const v6 = ipaddr.IPv6.parse(text);
    return { address: v6.toRFC5952String(), family: 'IPv6' };
  }
  return undefined;
}

export interface ParsedCIDR {
  /** Canonical `network/prefix` text. */
  cidr: string;
  family: IPFamily;
  prefix: number;
}

/** Parses a CIDR (`10.0.0.0/8`, `fd00::/64`); the address is masked to its network. */
export function parseCIDR(text: unknown): ParsedCIDR | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const max = ip.family === 'IPv4' ? 32 : 128;
  if (prefix > max) return undefined;
  const network =
    ip.family === 'IPv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${ip.address}/${prefix}`).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(`${ip.address}/${prefix}`).toRFC5952String();
  return { cidr: `${network}/${prefix}`, family: ip.family, prefix };
}

/** True when `address` (already canonical) lies inside `cidr`. */
export function cidrContains(cidr: ParsedCIDR, address: string): boolean {
  const ip = ipaddr.parse(address);
  const [net] = ipaddr.parseCIDR(cidr.cidr);
  if (ip.kind() !== net.kind()) return false;
  return ip.match(net, cidr.prefix);
}
