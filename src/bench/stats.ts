/** Order statistics for bench samples. */

/** The median: the middle value, or the mean of the two middle values; NaN for no samples. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The q-quantile (0 < q ≤ 1) by the nearest-rank method: the smallest sample
 * with at least q of the samples at or below it (p90 of 10 samples is the
 * 9th smallest, of 3 samples the largest). NaN for no samples.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  if (!(q > 0 && q <= 1)) throw new Error(`quantile must be in (0, 1], not ${q}`);
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
}

export const p90 = (xs: readonly number[]): number => quantile(xs, 0.9);

export interface Summary {
  median: number;
  p90: number;
  min: number;
  max: number;
}

export function summary(xs: readonly number[]): Summary {
  return { median: median(xs), p90: p90(xs), min: xs.length ? Math.min(...xs) : NaN, max: xs.length ? Math.max(...xs) : NaN };
}
