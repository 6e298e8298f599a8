/**
 * Parsers for the values that appear in iptables rules (addresses, ports,
 * marks, probabilities, NAT destinations). They throw an Error with a short
 * message on bad input; the rule parser adds the line number.
 */
import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

export interface Cidr {
  address: IpAddress;
  prefix: number;
}

export interface PortRange {
  from: number;
  to: number;
}

export interface MarkSpec {
  value: number;
  mask: number;
}

export interface NatDestination {
  address: string;
  port?: number;
  /** Set when a range was given and only its first element is used. */
  note?: string;
}

export function parseIp(text: string): IpAddress {
  if (!ipaddr.isValid(text)) throw new Error(`invalid IP address "${text}"`);
  return ipaddr.parse(text);
}

/** `addr`, `addr/len` or `addr/dotted-mask`; a bare address is /32 (IPv4) or /128 (IPv6). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = address.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return { address, prefix: max };
  const maskText = text.slice(slash + 1);
  let prefix: number | null;
  if (/^\d+$/.test(maskText)) {
    prefix = Number(maskText);
  } else if (address.kind() === 'ipv4' && ipaddr.IPv4.isValidFourPartDecimal(maskText)) {
    prefix = ipaddr.IPv4.parse(maskText).prefixLengthFromSubnetMask();
  } else {
    prefix = null;
  }
  if (prefix === null || prefix > max) throw new Error(`invalid prefix length or mask in "${text}"`);
  return { address, prefix };
}

/** Comma-separated list of CIDRs, as `-s a,b` accepts. */
export function parseCidrList(text: string): Cidr[] {
  return text.split(',').map((part) => parseCidr(part));
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.address.kind() !== address.kind()) return false;
  return address.match(cidr.address, cidr.prefix);
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address.toString()}/${cidr.prefix}`;
}

function parsePort(text: string, whole: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`invalid port "${whole}" (only numeric ports are supported)`);
  const n = Number(text);
  if (n > 65535) throw new Error(`port out of range in "${whole}"`);
  return n;
}

/** `p`, `a:b`, `a:` (to 65535) or `:b` (from 0). */
export function parsePortRange(text: string): PortRange {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const p = parsePort(text, text);
    return { from: p, to: p };
  }
  const a = text.slice(0, colon);
  const b = text.slice(colon + 1);
  const from = a === '' ? 0 : parsePort(a, text);
  const to = b === '' ? 65535 : parsePort(b, text);
  if (from > to) throw new Error(`invalid port range "${text}" (start is after end)`);
  return { from, to };
}

/** multiport list: `a,b,c:d`. */
export function parsePortList(text: string): PortRange[] {
  return text.split(',').map((part) => parsePortRange(part));
}

export function portInRanges(port: number, ranges: PortRange[]): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}

/** Unsigned 32-bit number in hex (`0x4000`) or decimal. */
export function parseUint32(text: string): number {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^\d+$/.test(text)) n = Number(text);
  else throw new Error(`invalid number "${text}"`);
  if (n > 0xffffffff) throw new Error(`number out of 32-bit range "${text}"`);
  return n >>> 0;
}

/** `V` or `V/M`; the mask defaults to 0xffffffff. */
export function parseMarkSpec(text: string): MarkSpec {
  const slash = text.indexOf('/');
  if (slash < 0) return { value: parseUint32(text), mask: 0xffffffff };
  return { value: parseUint32(text.slice(0, slash)), mask: parseUint32(text.slice(slash + 1)) };
}

export function formatMark(mark: number): string {
  return `0x${(mark >>> 0).toString(16)}`;
}

export function parseProbability(text: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw new Error(`invalid probability "${text}"`);
  const p = Number(text);
  if (p < 0 || p > 1) throw new Error(`probability "${text}" is not between 0 and 1`);
  return p;
}

/**
 * `--to-destination` / `--to-source` value: `IP`, `IP:PORT`, `[IPv6]:PORT`,
 * bare IPv6, with optional `a-b` ranges for address and port (first element used).
 */
export function parseNatDestination(text: string): NatDestination {
  let addrPart: string;
  let portPart: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new Error(`invalid NAT address "${text}" (missing "]")`);
    addrPart = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new Error(`invalid NAT address "${text}"`);
      portPart = rest.slice(1);
    }
  } else if ((text.match(/:/g) ?? []).length > 1) {
    addrPart = text; // bare IPv6, no port
  } else {
    const colon = text.indexOf(':');
    addrPart = colon < 0 ? text : text.slice(0, colon);
    portPart = colon < 0 ? undefined : text.slice(colon + 1);
  }
  const notes: string[] = [];
  let address = addrPart;
  const dash = addrPart.indexOf('-');
  if (dash >= 0) {
    address = addrPart.slice(0, dash);
    parseIp(addrPart.slice(dash + 1));
    notes.push(`address range ${addrPart}, first address used`);
  }
  const result: NatDestination = { address: parseIp(address).toString() };
  if (portPart !== undefined) {
    const pdash = portPart.indexOf('-');
    const first = pdash < 0 ? portPart : portPart.slice(0, pdash);
    if (pdash >= 0) {
      parsePort(portPart.slice(pdash + 1), text);
      notes.push(`port range ${portPart}, first port used`);
    }
    result.port = parsePort(first, text);
  }
  if (notes.length > 0) result.note = notes.join('; ');
  return result;
}

const LOOPBACK_V4: Cidr = { address: ipaddr.parse('127.0.0.0'), prefix: 8 };
const LOOPBACK_V6: Cidr = { address: ipaddr.parse('::1'), prefix: 128 };

/** True if `address` is one of `localAddresses`, in 127.0.0.0/8, or ::1. */
export function isLocalAddress(address: IpAddress, localAddresses: IpAddress[]): boolean {
  if (cidrContains(LOOPBACK_V4, address) || cidrContains(LOOPBACK_V6, address)) return true;
  const normal = address.toNormalizedString();
  return localAddresses.some((a) => a.kind() === address.kind() && a.toNormalizedString() === normal);
}
