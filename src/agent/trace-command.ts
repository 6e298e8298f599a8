/**
 * `kube-proxy-ts trace`: where does this packet go, and why?
 *
 *   kube-proxy-ts trace --src IP --dst IP:PORT [--proto tcp|udp|sctp]
 *       [--mode auto|iptables|nftables] [--input FILE|-]
 *       [--local-addresses IP,IP] [--json]
 *
 * Reads the live rules of the current network namespace or a saved dump
 * (`--input`, `-` for stdin), in iptables or nftables mode (trace-rules.ts:
 * `--mode`, default auto: nftables when our table `ip kube-proxy` / `ip6
 * kube-proxy` exists, else iptables; a dump by its content), learns this
 * host's addresses from `ip -j addr` unless `--local-addresses` gives them,
 * and follows the first packet of a new connection through the rules with the
 * mode's packet tracer (src/trace/iptables, src/trace/nftables). A source that
 * is one of the host's addresses is traced as sent by the host itself
 * (OUTPUT …); any other as arriving on an interface (PREROUTING …).
 *
 * Prints the readable explanation (verdict, endpoints with probabilities,
 * masquerade, chain-by-chain paths), or with `--json` one JSON object:
 * `{ packet, rules: { mode, source, reason, notes? }, localAddresses, result }`
 * where `result` is the tracer's TraceResult (the same shape in both modes).
 *
 * Exit status: 0 when the packet was traced (whatever the verdict), 2 for bad
 * arguments (the message names the flag), 1 when the rules (or the host's
 * addresses) cannot be read or parsed.
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { execa } from 'execa';
import type { IPFamily } from './model/types.js';
import { parseIP } from './util/addr.js';
import type { TracePacket, TraceResult } from '../trace/iptables/trace.js';
import { isLocalAddress, parseIp } from '../trace/iptables/values.js';
import { addressesFromIpJson as parseIpJson } from './util/local-addresses.js';
import { formatLoaded, hookNames, InputError, loadRules, traceLoaded, TRACE_MODES } from './trace-rules.js';
import type { LoadedRules, RulesIO, TraceMode, TraceModeFlag } from './trace-rules.js';

export { detectRulesKind, TRACE_MODES } from './trace-rules.js';
export type { TraceMode, TraceModeFlag } from './trace-rules.js';

export interface TraceCommandIO extends RulesIO {
  stdout(s: string): void;
  stderr(s: string): void;
}

export interface TraceCommandJSON {
  packet: TracePacket & { family: IPFamily };
  rules: {
    /** The tracer used. */
    mode: TraceMode;
    /** What was read: a file name, `standard input`, or the commands run (`nft list ruleset ip, …`, `iptables-save …`). */
    source: string;
    /** Why this mode: `--mode nftables`, `auto: table ip kube-proxy exists`, `auto: no table ip kube-proxy`, … */
    reason: string;
    /** Present when there is something to know about the rules (e.g. no kube-proxy table in them). */
    notes?: string[];
  };
  localAddresses: string[];
  result: TraceResult;
}

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

class UsageError extends Error {}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

export const defaultTraceIO: TraceCommandIO = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  readStdin: () => readAll(process.stdin),
  readFile: (path) => readFile(path, 'utf8'),
  async run(file, args) {
    const r = await execa(file, args, { reject: false, stripFinalNewline: false, maxBuffer: 1024 * 1024 * 1024, stdin: 'ignore' });
    if (r.exitCode === 0) return String(r.stdout);
    const code = (r as { code?: unknown }).code;
    if (code === 'ENOENT') throw new Error(`${file}: command not found`);
    const err = String(r.stderr ?? '').trim().split('\n').slice(0, 3).join(' | ');
    throw new Error(`${[file, ...args].join(' ')} failed${r.exitCode !== undefined ? ` (exit status ${r.exitCode})` : ''}: ${err || r.shortMessage}`);
  },
};

const MODES_HELP = `
Modes (--mode):
  iptables  the live rules from iptables-save (ip6tables-save for an IPv6 destination)
  nftables  the live rules from nft list ruleset ip and nft list ruleset inet (ip6 and
            inet for IPv6): every table whose base chains see the packet, ours and the
            others', by hook and priority
  auto      (default) nftables if nft list table ip kube-proxy (ip6 kube-proxy for IPv6)
            succeeds, else iptables: the agent deletes the other mode's rules when it
            starts, so that table exists only when kube-proxy-ts runs in nftables mode.
            With --input, the dump's content decides: iptables-save text (*nat, :CHAIN,
            -A ...) or nftables text (table ..., add ...); anything else is an error.
`;

function buildCommand(): Command {
  return new Command('kube-proxy-ts trace')
    .description(
      'Follow the first packet of a new connection through the rules of this network namespace (or a saved dump) ' +
        'and explain where it goes: verdict, endpoints and their probabilities, masquerade, and every rule on the way.',
    )
    .option('--src <ip>', "the packet's source address; one of this host's addresses means the host sends it, any other that it arrives from outside")
    .option('--dst <ip:port>', "the packet's destination, IP:PORT or [IPv6]:PORT (e.g. a ClusterIP and its port, a node IP and a NodePort)")
    .addOption(new Option('--proto <proto>', 'the transport protocol').choices(PROTOCOLS).default('tcp'))
    .addOption(
      new Option('--mode <mode>', 'whose rules to trace (see Modes below)')
        .choices(TRACE_MODES)
        .default('auto'),
    )
    .option('--input <file>', "trace a saved dump instead of the live rules: iptables-save output, or nft list ruleset output / nft -f input ('-' reads standard input); for a dump of another host, give its --local-addresses too")
    .option('--local-addresses <ips>', "this host's addresses, comma-separated (default: read with `ip -j addr`)")
    .option('--json', 'print the trace as JSON instead of the explanation', false)
    .addHelpText('after', MODES_HELP)
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
}

interface Parsed {
  src: string;
  dst: string;
  dport: number;
  family: IPFamily;
  proto: TracePacket['proto'];
  mode: TraceModeFlag;
  input?: string;
  localAddresses?: string[];
  json: boolean;
}

function parseDestination(text: string): { ip: string; family: IPFamily; port: number } {
  let host: string;
  let port: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2]!;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new UsageError(`--dst: ${JSON.stringify(text)} needs a port: IP:PORT, or [IPv6]:PORT`);
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(':')) throw new UsageError(`--dst: ${JSON.stringify(text)}: write an IPv6 destination in brackets, [IPv6]:PORT`);
  }
  const ip = parseIP(host);
  if (!ip) throw new UsageError(`--dst: ${JSON.stringify(host)} is not an IP address`);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--dst: port ${JSON.stringify(port)} must be a number from 1 to 65535`);
  return { ip: ip.address, family: ip.family, port: Number(port) };
}

function validate(raw: Record<string, unknown>): Parsed {
  const srcText = raw.src;
  const dstText = raw.dst;
  if (typeof srcText !== 'string') throw new UsageError("--src is required: the packet's source IP");
  if (typeof dstText !== 'string') throw new UsageError("--dst is required: the packet's destination IP:PORT");
  const src = parseIP(srcText);
  if (!src) throw new UsageError(`--src: ${JSON.stringify(srcText)} is not an IP address`);
  const dst = parseDestination(dstText);
  if (src.family !== dst.family) throw new UsageError(`--src ${src.address} and --dst ${dstText} are not the same IP family`);
  const parsed: Parsed = {
    src: src.address,
    dst: dst.ip,
    dport: dst.port,
    family: dst.family,
    proto: raw.proto as TracePacket['proto'],
    mode: raw.mode as TraceModeFlag,
    json: raw.json === true,
  };
  if (typeof raw.input === 'string') {
    if (raw.input === '') throw new UsageError("--input: give a file name, or '-' for standard input");
    parsed.input = raw.input;
  }
  if (typeof raw.localAddresses === 'string') {
    const list = raw.localAddresses.split(',').map((s) => s.trim()).filter((s) => s !== '');
    parsed.localAddresses = list.map((a) => {
      const ip = parseIP(a);
      if (!ip) throw new UsageError(`--local-addresses: ${JSON.stringify(a)} is not an IP address`);
      return ip.address;
    });
  }
  return parsed;
}

/** This host's addresses from `ip -j addr`; a parse failure is an input error (exit 1). */
export function addressesFromIpJson(text: string): string[] {
  try {
    return parseIpJson(text);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

async function localAddresses(p: Parsed, io: TraceCommandIO): Promise<string[]> {
  if (p.localAddresses !== undefined) return p.localAddresses;
  let text: string;
  try {
    text = await io.run('ip', ['-j', 'addr']);
  } catch (err) {
    throw new InputError(`cannot read the local addresses (give them with --local-addresses): ${(err as Error).message}`);
  }
  return addressesFromIpJson(text);
}

function describePacket(packet: TracePacket, rules: LoadedRules, local: string[]): string {
  const dst = packet.dst.includes(':') ? `[${packet.dst}]:${packet.dport}` : `${packet.dst}:${packet.dport}`;
  const how = `${packet.origin === 'local' ? 'sent by this host' : 'arriving from outside'} (${hookNames(rules.mode, packet.origin)})`;
  return [
    `Packet: ${packet.proto} ${packet.src} → ${dst}, ${how}`,
    `Rules: ${rules.source}`,
    `Mode: ${rules.mode} (${rules.reason})`,
    `Local addresses: ${local.length > 0 ? local.join(', ') : '(none; loopback only)'}`,
    '',
  ].join('\n');
}

/**
 * Runs `kube-proxy-ts trace` with `argv` (the arguments after `trace`) and
 * resolves with the exit status. Never rejects for the user's mistakes or
 * unreadable input; messages go to `io.stderr`.
 */
export async function runTraceCommand(argv: string[], ioOverrides: Partial<TraceCommandIO> = {}): Promise<number> {
  const io: TraceCommandIO = { ...defaultTraceIO, ...ioOverrides };
  const cmd = buildCommand();
  let out = '';
  let err = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') {
        io.stdout(out);
        return 0;
      }
      io.stderr(err || `${e.message}\n`);
      return 2;
    }
    throw e;
  }

  let parsed: Parsed;
  try {
    parsed = validate(cmd.opts());
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`kube-proxy-ts trace: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  try {
    const request = { family: parsed.family, mode: parsed.mode, ...(parsed.input === undefined ? {} : { input: parsed.input }) };
    const [rules, local] = await Promise.all([loadRules(request, io), localAddresses(parsed, io)]);
    const localParsed = local.map((a) => parseIp(a));
    const origin = isLocalAddress(parseIp(parsed.src), localParsed) ? 'local' : 'forward';
    const packet: TracePacket = { origin, src: parsed.src, dst: parsed.dst, proto: parsed.proto, dport: parsed.dport };
    const result = traceLoaded(rules, packet, { localAddresses: local });
    for (const note of rules.notes) io.stderr(`kube-proxy-ts trace: note: ${note}\n`);
    if (parsed.json) {
      const about: TraceCommandJSON['rules'] = { mode: rules.mode, source: rules.source, reason: rules.reason };
      if (rules.notes.length > 0) about.notes = rules.notes;
      const doc: TraceCommandJSON = { packet: { ...packet, family: parsed.family }, rules: about, localAddresses: local, result };
      io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      io.stdout(describePacket(packet, rules, local) + formatLoaded(rules, result));
    }
    return 0;
  } catch (e) {
    if (e instanceof InputError) {
      io.stderr(`kube-proxy-ts trace: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
