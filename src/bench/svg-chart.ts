/**
 * A small hand-written SVG line chart for the bench matrix: x = services
 * (log scale), y = milliseconds (log scale), one line per series, notes
 * under the plot (e.g. skipped cells). Pure: data in, SVG text out.
 */

export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  label: string;
  color: string;
  dashed?: boolean;
  /** Dotted (wins over dashed). */
  dotted?: boolean;
  points: ChartPoint[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  notes?: string[];
}

const W = 820;
const H = 470;
const M = { left: 70, right: 260, top: 44, bottom: 60 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Powers of ten covering [lo, hi]. */
function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function msLabel(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function countLabel(n: number): string {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}

export function lineChartSvg(spec: ChartSpec): string {
  const pts = spec.series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const xLo = xs.length ? Math.min(...xs) / 1.3 : 1;
  const xHi = xs.length ? Math.max(...xs) * 1.3 : 10;
  const yDec = decades(ys.length ? Math.min(...ys) : 1, ys.length ? Math.max(...ys) : 10);
  const yLo = yDec[0]!;
  const yHi = Math.max(yDec[yDec.length - 1]!, yLo * 10);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + ((Math.log10(x) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * pw;
  const sy = (y: number): number => M.top + ph - ((Math.log10(y) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * ph;
  const f = (v: number): string => v.toFixed(1);
  const out: string[] = [];
  const notes = spec.notes ?? [];
  const height = H + notes.length * 16;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${height}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  for (const y of yDec.filter((d) => d >= yLo && d <= yHi)) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${f(sy(y))}" y2="${f(sy(y))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end">${esc(msLabel(y))}</text>`);
  }
  for (const x of xTicks) {
    out.push(`<line x1="${f(sx(x))}" x2="${f(sx(x))}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${f(sx(x))}" y="${M.top + ph + 16}" text-anchor="middle">${esc(countLabel(x))}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 38}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const p = s.points.filter((q) => q.x > 0 && q.y > 0).sort((a, b) => a.x - b.x);
    const dash = s.dotted ? ' stroke-dasharray="2 3"' : s.dashed ? ' stroke-dasharray="6 4"' : '';
    if (p.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${p.map((q) => `${f(sx(q.x))},${f(sy(q.y))}`).join(' ')}"/>`);
    for (const q of p) out.push(`<circle cx="${f(sx(q.x))}" cy="${f(sy(q.y))}" r="3.5" fill="${s.color}"><title>${esc(`${s.label}: ${countLabel(q.x)} services, ${msLabel(Math.round(q.y))}`)}</title></circle>`);
    const ly = M.top + 10 + i * 20;
    const lx = M.left + pw + 14;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  notes.forEach((n, i) => out.push(`<text x="${M.left}" y="${H - 8 + i * 16}" fill="#555">${esc(n)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
