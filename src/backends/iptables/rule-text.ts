/** Small pieces of iptables rule text shared by the renderers. Pure. */

/**
 * Quotes a comment for iptables-restore when it has spaces; comments come
 * only from validated names. An empty text means "no comment" and gives ''
 * (e.g. the KUBE-FIREWALL jump rules, which upstream writes without one).
 */
export function comment(text: string): string {
  const safe = text.replace(/["\\]/g, '');
  if (safe === '') return '';
  return /\s/.test(safe) ? `-m comment --comment "${safe}"` : `-m comment --comment ${safe}`;
}

/** Joins rule parts with single spaces, leaving out empty ones. */
export function rule(...parts: string[]): string {
  return parts.filter((p) => p !== '').join(' ');
}

export function markHex(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16)}`;
}

const probabilities: string[] = [];

/** Upstream's probability text: 1/n with ten decimals. */
export function probability(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 4096) return (1 / n).toFixed(10);
  return (probabilities[n] ??= (1 / n).toFixed(10));
}

/** The loopback network of a family: 127.0.0.0/8 or ::1/128. */
export function loopbackCIDR(family: 'IPv4' | 'IPv6'): string {
  return family === 'IPv6' ? '::1/128' : '127.0.0.0/8';
}
