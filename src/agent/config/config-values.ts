/**
 * Values of the kube-proxy configuration as upstream reads and validates
 * them: Go durations, bind addresses (host:port), the cluster CIDR pair.
 * Pure functions.
 */
import { parseCIDR, parseIP } from '../util/addr.js';
import { parseDuration } from '../util/duration.js';

/** A Go `metav1.Duration`, held in milliseconds. */
type DurationMs = number;


/** Parses a Go duration (`1m30s`, `-5s`, `0`) to milliseconds; undefined when malformed. */
export function parseGoDuration(text: string): DurationMs | undefined {
  if (text.length === 0 || /\s/.test(text)) return undefined;
  let sign = 1;
  let rest = text;
  if (rest[0] === '-' || rest[0] === '+') {
    sign = rest[0] === '-' ? -1 : 1;
    rest = rest.slice(1);
  }
  const ms = parseDuration(rest.replace(/\u03bcs/g, 'us'));
  return ms === undefined ? undefined : sign * ms;
}

/** Formats milliseconds the way Go prints a time.Duration (`1m0s`, `500ms`, `24h0m0s`). */
export function formatGoDuration(ms: DurationMs): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1000) {
    out = `${+rest.toFixed(6)}ms`;
  } else {
    const h = Math.floor(rest / 3_600_000);
    rest -= h * 3_600_000;
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    const s = `${+(rest / 1000).toFixed(9)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

/** Splits `IP:port` / `[IPv6]:port` like Go's net.SplitHostPort; undefined when not of that form. */
function splitHostPort(text: string): { host: string; port: string } | undefined {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') return undefined;
    const host = text.slice(1, end);
    const port = text.slice(end + 2);
    if (port.includes(':') || port.includes('[') || port.includes(']')) return undefined;
    return { host, port };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = text.slice(0, colon);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return undefined;
  return { host, port: text.slice(colon + 1) };
}

/**
 * Checks an `IP:port` bind address (healthz, metrics) as upstream does: an IP
 * literal (IPv6 in brackets) and a port from 1 to 65535. Returns the reason it
 * is bad, or undefined when it is fine.
 */
export function bindAddressProblem(text: string): string | undefined {
  const hp = splitHostPort(text);
  if (!hp) return `must be IP:port (e.g. 0.0.0.0:10256 or [::]:10256), got ${JSON.stringify(text)}`;
  if (!parseIP(hp.host)) return `${JSON.stringify(hp.host)} is not a valid IP, in ${JSON.stringify(text)}`;
  if (!/^\d{1,5}$/.test(hp.port) || Number(hp.port) < 1 || Number(hp.port) > 65535) {
    return `${JSON.stringify(hp.port)} is not a valid port (1-65535), in ${JSON.stringify(text)}`;
  }
  return undefined;
}

/** Upstream's AppendPortIfNeeded: a bare IP gets `:port` (IPv6 bracketed); anything else is left for validation. */
export function appendPortIfNeeded(addr: string, port: number): string {
  if (splitHostPort(addr)) return addr;
  const ip = parseIP(addr);
  if (!ip) return addr;
  return ip.family === 'IPv4' ? `${addr}:${port}` : `[${addr}]:${port}`;
}

/**
 * Splits a clusterCIDR value (one CIDR or a comma-separated dual-stack pair),
 * as upstream validates it. Returns the canonical CIDRs by family, or the
 * reason it is invalid.
 */
export function parseClusterCIDRs(text: string): { ipv4?: string; ipv6?: string } | { problem: string } {
  const parts = text.split(',');
  if (parts.length > 2) return { problem: `must be one CIDR or a dual-stack pair (e.g. 10.244.0.0/16,fd00:10:244::/56), got ${JSON.stringify(text)}` };
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const part of parts) {
    const c = parseCIDR(part);
    if (!c) return { problem: `${JSON.stringify(part)} is not a valid CIDR (e.g. 10.244.0.0/16)` };
    const key = c.family === 'IPv4' ? 'ipv4' : 'ipv6';
    if (out[key] !== undefined) return { problem: `a pair of CIDRs must have one IPv4 and one IPv6 CIDR, got ${JSON.stringify(text)}` };
    out[key] = c.cidr;
  }
  return out;
}

export function isUnspecifiedIP(text: string): boolean {
  const ip = parseIP(text);
  return ip !== undefined && (ip.address === '0.0.0.0' || ip.address === '::');
}
