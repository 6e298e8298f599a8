/**
 * The measured floor under any iptables sync on the project machine (see
 * notes/kernel-tool-floor.md: each ruleset restored once into a fresh
 * network namespace, 2 cores, iptables 1.8.9), used to pick the default
 * iptables variant and to skip bench cells that would run for minutes
 * instead of hanging in them. Estimates interpolate between the measured
 * points on a log-log scale and extrapolate with the last segment's slope.
 */

export type IptablesVariant = 'legacy' | 'nft';

/** Ruleset size in restore lines → seconds. */
type Curve = readonly (readonly [number, number])[];

/** A full restore into an empty namespace. */
const FULL: Record<IptablesVariant, Curve> = {
  nft: [
    [4_300, 0.14],
    [12_900, 0.51],
    [43_000, 5.8],
    [430_000, 5807],
  ],
  legacy: [
    [4_300, 0.07],
    [12_900, 0.14],
    [43_000, 0.4],
    [430_000, 10.9],
  ],
};

/** One small change (one new chain) applied into a loaded ruleset of that size. */
const CHANGE: Record<IptablesVariant, Curve> = {
  nft: [
    [43_000, 0.017],
    [430_000, 0.054],
  ],
  legacy: [
    [43_000, 0.38],
    [430_000, 2.8],
  ],
};

/** Upstream's layout, as in the measurement: about 43 lines per service at 10 endpoints. */
export function estimatedLines(services: number, endpointsPerService: number): number {
  return services * (3 + 4 * endpointsPerService);
}

function interpolate(curve: Curve, x: number): number {
  if (x <= 0) return 0;
  const lx = Math.log(x);
  let i = 0;
  while (i < curve.length - 2 && x > curve[i + 1]![0]) i++;
  const [x0, y0] = curve[i]!;
  const [x1, y1] = curve[i + 1]!;
  const slope = (Math.log(y1) - Math.log(y0)) / (Math.log(x1) - Math.log(x0));
  return Math.exp(Math.log(y0) + slope * (lx - Math.log(x0)));
}

export function estimateFullSeconds(variant: IptablesVariant, lines: number): number {
  return interpolate(FULL[variant], lines);
}

export function estimateChangeSeconds(variant: IptablesVariant, lines: number): number {
  return interpolate(CHANGE[variant], lines);
}

/** Estimated kernel-tool seconds for a whole bench cell: R × (one full sync + 3K small changes). */
export function estimateCellSeconds(variant: IptablesVariant, services: number, endpointsPerService: number, changes: number, repeat: number): number {
  const lines = estimatedLines(services, endpointsPerService);
  return repeat * (estimateFullSeconds(variant, lines) + 3 * changes * estimateChangeSeconds(variant, lines));
}

/** At and above this many services the bench uses iptables-legacy unless told otherwise. */
export const LEGACY_DEFAULT_FROM = 2000;

export const FLOOR_CITATION =
  'measured floor (notes/kernel-tool-floor.md): a full restore of 1,000 × 10 takes 5.8 s with iptables-nft vs 0.40 s with iptables-legacy, ' +
  'and of 10,000 × 10 97 min vs 10.9 s; iptables-nft grows about with the cube of the number of chains';

export interface VariantChoice {
  variant: IptablesVariant;
  /** Why this variant, for the output. */
  reason: string;
}

/**
 * The variant to bench: the one asked for; else iptables-legacy from
 * LEGACY_DEFAULT_FROM services up (iptables-nft would take minutes to hours);
 * else the host's own `iptables-restore` (what the agent would use).
 */
export function chooseVariant(asked: IptablesVariant | undefined, services: number, hostVariant: IptablesVariant): VariantChoice {
  if (asked) return { variant: asked, reason: 'chosen with --iptables' };
  if (services >= LEGACY_DEFAULT_FROM) {
    return {
      variant: 'legacy',
      reason: `iptables-legacy by default from ${LEGACY_DEFAULT_FROM.toLocaleString('en-US')} services: ${FLOOR_CITATION}`,
    };
  }
  return { variant: hostVariant, reason: `the host's iptables-restore (iptables-${hostVariant}), what the agent uses` };
}
