/** The bench's statistics, floor estimates, formatting and chart. */
import t from 'tap';
import { median, p90, quantile, summary } from '../../src/bench/stats.js';
import { chooseVariant, estimateCellSeconds, estimateFullSeconds, LEGACY_DEFAULT_FROM } from '../../src/bench/kernel-floor.js';
import { formatBytes, formatMs } from '../../src/bench/format.js';
import { lineChartSvg } from '../../src/bench/svg-chart.js';

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5, 'even count: mean of the two middle values');
  t.equal(median([7]), 7);
  t.ok(Number.isNaN(median([])));
  const xs = [5, 4, 3];
  median(xs);
  t.same(xs, [5, 4, 3], 'the input is not sorted in place');
});

t.test('p90 by nearest rank', async (t) => {
  t.equal(p90([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 9);
  t.equal(p90([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]), 9, 'order does not matter');
  t.equal(p90([1, 2, 3]), 3, 'three samples: the largest');
  t.equal(p90(Array.from({ length: 20 }, (_, i) => i + 1)), 18);
  t.equal(p90([4]), 4);
  t.ok(Number.isNaN(p90([])));
  t.equal(quantile([1, 2, 3, 4], 0.5), 2);
  t.equal(quantile([1, 2, 3, 4], 1), 4);
  t.throws(() => quantile([1], 0));
});

t.test('summary', async (t) => {
  t.same(summary([2, 8, 4, 6]), { median: 5, p90: 8, min: 2, max: 8 });
});

t.test('floor estimates follow the measured points', async (t) => {
  t.ok(Math.abs(estimateFullSeconds('nft', 43_000) - 5.8) < 1e-9);
  t.ok(Math.abs(estimateFullSeconds('legacy', 430_000) - 10.9) < 1e-9);
  const mid = estimateFullSeconds('nft', 200_000);
  t.ok(mid > 5.8 && mid < 5807, 'interpolated in between');
  t.ok(estimateFullSeconds('nft', 860_000) > 5807, 'extrapolated beyond');
  t.ok(estimateCellSeconds('nft', 10_000, 10, 5, 3) > 3600, 'nft at 10k: hours');
  t.ok(estimateCellSeconds('legacy', 10_000, 10, 5, 3) < 240, 'legacy at 10k: minutes at most');
  t.ok(estimateCellSeconds('nft', 5_000, 10, 5, 3) > 300, 'nft at 5k: over five minutes');
  t.ok(estimateCellSeconds('nft', 1_000, 10, 5, 3) < 60, 'nft at 1k: under a minute');
});

t.test('variant choice', async (t) => {
  t.equal(chooseVariant('nft', 10_000, 'legacy').variant, 'nft', 'asked for wins');
  const big = chooseVariant(undefined, LEGACY_DEFAULT_FROM, 'nft');
  t.equal(big.variant, 'legacy');
  t.match(big.reason, /97 min/, 'the reason cites the measured floor');
  t.equal(chooseVariant(undefined, LEGACY_DEFAULT_FROM - 1, 'nft').variant, 'nft', "below: the host's variant");
  t.equal(chooseVariant(undefined, 10, 'legacy').variant, 'legacy');
});

t.test('formatting', async (t) => {
  t.equal(formatMs(0.5), '0.50 ms');
  t.equal(formatMs(12.34), '12.3 ms');
  t.equal(formatMs(250), '250 ms');
  t.equal(formatMs(2500), '2.50 s');
  t.equal(formatMs(25_000), '25.0 s');
  t.equal(formatMs(NaN), '-');
  t.equal(formatBytes(999), '999 B');
  t.equal(formatBytes(1500), '1.5 KB');
  t.equal(formatBytes(4_400_000), '4.4 MB');
});

t.test('the chart: one line per series, escaped labels, notes', async (t) => {
  const svg = lineChartSvg({
    title: 'sync <time>',
    xLabel: 'services',
    yLabel: 'ms',
    series: [
      { label: 'a & b', color: '#000', points: [{ x: 1000, y: 500 }, { x: 10000, y: 12000 }] },
      { label: 'c', color: '#f00', dashed: true, points: [{ x: 1000, y: 20 }] },
    ],
    notes: ['c at 10k: skipped'],
  });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /<\/svg>\n$/);
  t.equal((svg.match(/<polyline/g) ?? []).length, 1, 'a single point draws no line');
  t.equal((svg.match(/<circle/g) ?? []).length, 3);
  t.match(svg, /sync &lt;time&gt;/);
  t.match(svg, /a &amp; b/);
  t.match(svg, /c at 10k: skipped/);
  t.notMatch(svg, /NaN/);
});
