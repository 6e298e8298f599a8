/**
 * Human-readable explanation of a TraceResult, for someone asking "why can't
 * I reach my service?". Paths that end the same way through the same rules
 * are grouped; each group shows its chain-by-chain steps.
 */
import type { TracePath, TraceResult, TraceStep } from './trace.js';

function percent(p: number): string {
  const v = p * 100;
  return `${Number.isInteger(Math.round(v * 10) / 10) ? v.toFixed(0) : v.toFixed(1)}%`;
}

function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function describeStep(st: TraceStep): string {
  const what = st.comment !== undefined ? `"${st.comment}"` : st.rule;
  return `[${st.table}/${st.chain}] ${what} → ${st.action}`;
}

/** Steps that change the outcome (not assumption-only "no match" steps). */
function effectiveSteps(path: TracePath): TraceStep[] {
  return path.steps.filter((s) => s.action !== 'no match');
}

function groupKey(path: TracePath): string {
  const dnat = path.dnat === undefined ? '-' : endpoint(path.dnat.address, path.dnat.port);
  const steps = effectiveSteps(path).map((s) => `${s.table}/${s.chain}/${s.rule}/${s.action}`);
  return [path.verdict, dnat, String(path.masquerade), ...steps].join('\n');
}

interface Group {
  indexes: number[];
  probability: number;
  path: TracePath;
}

function groupPaths(paths: TracePath[]): Group[] {
  const groups = new Map<string, Group>();
  paths.forEach((path, index) => {
    const key = groupKey(path);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { indexes: [index + 1], probability: path.probability, path });
    else {
      g.indexes.push(index + 1);
      g.probability += path.probability;
    }
  });
  return [...groups.values()];
}

function outcomeLine(path: TracePath): string {
  const parts: string[] = [path.verdict];
  if (path.verdict === 'ACCEPT') {
    parts.push(path.dnat === undefined ? 'no DNAT (original destination kept)' : `DNAT to ${endpoint(path.dnat.address, path.dnat.port)}`);
    parts.push(`masquerade: ${path.masquerade ? 'yes' : 'no'}`);
  }
  parts.push(`mark 0x${path.mark.toString(16)}`);
  return parts.join(', ');
}

function culprit(path: TracePath): string | null {
  if (path.verdict === 'ACCEPT') return null;
  const last = path.steps[path.steps.length - 1];
  if (last === undefined) return `${path.verdict} (no rule recorded)`;
  const by = last.rule === '(policy DROP)' ? `the DROP policy of ${last.table}/${last.chain}` : `${last.table}/${last.chain}: ${last.rule}`;
  const why = last.comment !== undefined ? ` (comment: "${last.comment}")` : '';
  return `${path.verdict === 'DROP' ? 'Dropped' : 'Rejected'} by ${by}${why}`;
}

function formatGroup(g: Group, total: number): string[] {
  const label = g.indexes.length === 1 ? `Path ${g.indexes[0] ?? 0}` : `Paths ${g.indexes.join(', ')}`;
  const lines = [`${label} of ${total} (${percent(g.probability)}): ${outcomeLine(g.path)}`];
  const steps = g.path.steps;
  if (steps.length === 0) lines.push('  (no rule matched; every chain on the way ended with policy ACCEPT)');
  for (const st of steps) {
    lines.push(`  ${describeStep(st)}`);
    for (const note of st.notes ?? []) lines.push(`      note: ${note}`);
  }
  const c = culprit(g.path);
  if (c !== null) lines.push(`  ${c}`);
  return lines;
}

export function formatTrace(result: TraceResult): string {
  const lines: string[] = [];
  const n = result.paths.length;
  lines.push(`Verdict: ${result.verdict}${n > 1 ? ` (${n} paths)` : ''}`);
  if (result.verdict === 'MIXED') {
    const by = new Map<string, number>();
    for (const p of result.paths) by.set(p.verdict, (by.get(p.verdict) ?? 0) + p.probability);
    lines.push(`  ${[...by.entries()].map(([v, p]) => `${v} ${percent(p)}`).join(', ')}`);
  }
  if (result.endpoints.length === 0) {
    lines.push('Endpoints: none (no accepted path was DNATed)');
  } else {
    lines.push('Endpoints:');
    for (const e of result.endpoints) lines.push(`  ${endpoint(e.address, e.port)}  ${percent(e.probability)}`);
  }
  lines.push(`Masquerade: ${result.masquerade === 'some' ? 'on some accepted paths only' : result.masquerade}`);
  for (const g of groupPaths(result.paths)) {
    lines.push('');
    lines.push(...formatGroup(g, n));
  }
  return `${lines.join('\n')}\n`;
}
