/**
 * Human-readable explanation of an nftables TraceResult. The result has the
 * iptables tracer's shape, so the iptables formatter serves both; steps read
 * `[ip kube-proxy/services] rule → action`.
 */
import { formatTrace } from '../iptables/format.js';
import type { TraceResult } from '../iptables/trace.js';

export function formatNftTrace(result: TraceResult): string {
  return formatTrace(result);
}
