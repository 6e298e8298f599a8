/**
 * What every tracer shares: checking the packet it is asked about, and
 * summing its paths into one result (verdict, endpoints with probabilities,
 * masquerade). The result types live with the iptables tracer, which defined
 * the contract first.
 */
import type { TraceOptions, TracePacket, TracePath, TraceResult } from './iptables/trace.js';
import { parseIp, type IpAddress } from './iptables/values.js';

function parseAddress(what: string, text: string): IpAddress {
  try {
    return parseIp(text);
  } catch {
    throw new Error(`trace: invalid ${what} address "${text}"`);
  }
}

function checkPort(what: string, port: number | undefined): void {
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new Error(`trace: invalid ${what} ${port} (must be an integer 0-65535)`);
  }
}

/** Parses and checks a packet and the local addresses; throws an Error naming what is wrong. */
export function checkPacket(packet: TracePacket, opts: TraceOptions): { src: IpAddress; dst: IpAddress; localAddresses: IpAddress[] } {
  const src = parseAddress('source', packet.src);
  const dst = parseAddress('destination', packet.dst);
  if (src.kind() !== dst.kind()) throw new Error(`trace: source ${packet.src} and destination ${packet.dst} are not the same IP family`);
  checkPort('destination port', packet.dport);
  checkPort('source port', packet.sport);
  return { src, dst, localAddresses: opts.localAddresses.map((a) => parseAddress('local', a)) };
}

/** One result from every path a packet can take. */
export function summarize(paths: TracePath[]): TraceResult {
  const verdicts = new Set(paths.map((p) => p.verdict));
  const [only] = verdicts;
  const verdict = verdicts.size === 1 && only !== undefined ? only : 'MIXED';
  const endpoints = new Map<string, { address: string; port: number; probability: number }>();
  const accepted = paths.filter((p) => p.verdict === 'ACCEPT');
  for (const p of accepted) {
    if (p.dnat === undefined) continue;
    const key = `${p.dnat.address}|${p.dnat.port}`;
    const e = endpoints.get(key);
    if (e === undefined) endpoints.set(key, { ...p.dnat, probability: p.probability });
    else e.probability += p.probability;
  }
  const masq = accepted.filter((p) => p.masquerade).length;
  const masquerade = masq === 0 ? 'never' : masq === accepted.length ? 'always' : 'some';
  return { verdict, endpoints: [...endpoints.values()], masquerade, paths };
}
