/** The bench's readable output: a header, the cluster, one table row per phase. */
import type { BenchResult, PhaseStats } from './run-bench.js';
import { formatSeconds } from './run-bench.js';
import { PHASE_LABELS, PHASES } from './scenario.js';

const n = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  if (b < 1000) return `${Math.round(b)} B`;
  if (b < 1_000_000) return `${(b / 1000).toFixed(1)} KB`;
  return `${(b / 1_000_000).toFixed(1)} MB`;
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

function row(label: string, s: PhaseStats): string[] {
  return [
    label,
    String(s.samples),
    formatMs(s.totalMs.median),
    formatMs(s.totalMs.p90),
    formatMs(s.agentMs.median),
    formatMs(s.agentMs.p90),
    formatMs(s.toolMs.median),
    formatMs(s.toolMs.p90),
    Number.isFinite(s.agentShare) ? `${(s.agentShare * 100).toFixed(0)}%` : '-',
    formatBytes(s.bytes.median),
    n(s.rules.median),
    Number.isFinite(s.peakRssMiB) ? `${s.peakRssMiB.toFixed(0)} MiB` : '-',
  ];
}

export function formatTable(result: BenchResult): string {
  const p = result.params;
  const lines: string[] = [];
  const where = result.tool.command ? `${result.tool.command} in a throwaway network namespace` : 'nothing applied (--no-apply)';
  lines.push(`kube-proxy-ts bench: ${result.mode} mode, ${n(p.services)} services × ${n(p.endpointsPerService)} endpoints, ${where}`);
  if (result.iptables?.variant) lines.push(`  iptables-${result.iptables.variant}: ${result.iptables.reason}`);
  if (result.skipped) {
    lines.push(`skipped: ${result.skipped}`);
    return `${lines.join('\n')}\n`;
  }
  const c = result.cluster;
  if (c) {
    lines.push(
      `cluster (seed ${p.seed}): ${n(c.services)} services (${n(c.byType.ClusterIP)} ClusterIP, ${n(c.byType.NodePort)} NodePort, ${n(c.byType.LoadBalancer)} LoadBalancer), ` +
        `${n(c.servicePorts)} service ports (${n(c.udpServicePorts)} UDP), ${n(c.endpoints)} endpoints (${n(c.localEndpoints)} on this node) on ${n(c.nodes)} nodes; ` +
        `loaded into the store in ${formatMs(c.loadMs.median)}`,
    );
  }
  lines.push(`runs: ${p.repeat} × (cold full sync, then ${p.changes} endpoint changes, ${p.changes} services added, ${p.changes} removed, each a partial sync)`);
  lines.push('');
  const header = ['phase', 'n', 'total med', 'p90', 'agent med', 'p90', 'tool med', 'p90', 'agent %', 'bytes med', 'rules med', 'peak RSS'];
  const rows = result.phases ? PHASES.map((ph) => row(PHASE_LABELS[ph], result.phases![ph])) : [];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  lines.push(pad(header, widths));
  for (const r of rows) lines.push(pad(r, widths));
  lines.push('');
  lines.push(
    `total = store change + snapshot + sync; tool = the kernel tool processes, start to exit (less the time spent rendering input they were waiting for); ` +
      `agent = total − tool; rules = ${result.mode === 'nftables' ? 'rules and set/map elements' : 'rules'} in the input; peak RSS = the process maxRSS during the first run (one cluster in a fresh process, as an agent; the sync pipeline only: the whole agent with its API client is measured by bench --latency)`,
  );
  if (result.phases && result.params.repeat > 1) lines.push(`peak RSS over all ${result.params.repeat} runs in this process: ${result.peakRssAllRunsMiB.toFixed(0)} MiB (each run builds a new cluster in a heap V8 has already grown)`);
  if (result.aborted) lines.push(`aborted: ${result.aborted}`);
  lines.push(`elapsed ${formatSeconds(result.elapsedMs / 1000)}`);
  return `${lines.join('\n')}\n`;
}
