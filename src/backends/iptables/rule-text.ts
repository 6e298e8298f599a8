/** Small pieces of iptables rule text shared by the renderers. Pure. */

/** Quotes a comment for iptables-restore when it has spaces; comments come only from validated names. */
export function comment(text: string): string {
  const safe = text.replace(/["\\]/g, '');
  return /\s/.test(safe) ? `-m comment --comment "${safe}"` : `-m comment --comment ${safe}`;
}

export function markHex(bit: number): string {
  return `0x${((1 << bit) >>> 0).toString(16)}`;
}

/** Upstream's probability text: 1/n with ten decimals. */
export function probability(n: number): string {
  return (1 / n).toFixed(10);
}
