/**
 * Connectivity probe for the network-namespace harness (see topology.ts).
 *
 * A probe always runs in the network namespace of the process executing it.
 * The harness keeps one long-lived probe process per namespace (serve mode), so
 * a probe costs one JSON line over a pipe instead of spawning `node`.
 *
 * One-shot CLI (prints one JSON ProbeResult, exit status 0 iff ok):
 *   ip netns exec <ns> node dist/scripts/netns/probe.js tcp|udp HOST PORT \
 *       [--timeout MS] [--bind LOCAL_IP] [--sport PORT] [--path /whoami]
 * HOST may be IPv4 or IPv6 (the socket family follows it).
 * Serve mode (used by topology.ts): `probe.js --serve` prints `READY`, then
 * reads JSON lines `{"id":1,"proto":"tcp","host":..,"port":..,"timeoutMs":..}`
 * from stdin and writes `{"id":1,"result":<ProbeResult>}` lines to stdout,
 * probes running concurrently. Exits when stdin closes.
 *
 * TCP probes send `GET <path> HTTP/1.0` and read the podserver's answer (X-Pod /
 * X-Source-Ip headers, or the first body line). UDP probes send one datagram
 * on a *connected* socket and wait for the podserver's "<pod>\n<ip>:<port>\n".
 *
 * Error classification (`error` of a failed probe):
 *   'refused'          TCP RST or ICMP(v6) port-unreachable (ECONNREFUSED; for UDP
 *                      the ICMP error is delivered on the connected socket).
 *                      Node-local UDP hitting a filter rule fails sendmsg() with
 *                      EPERM for both DROP and REJECT; that is ignored, so REJECT
 *                      still reads 'refused' (its ICMP arrives) and DROP 'timeout'.
 *                      Reported as soon as the kernel sees it (milliseconds) --
 *                      except IPv6 TCP refused by ICMPv6 (ip6tables REJECT's default
 *                      icmp6-port-unreachable): the error for the first SYN arrives
 *                      while connect() owns the socket and is dropped
 *                      (TcpExtLockDroppedIcmps), so it reads 'refused' after the
 *                      SYN retransmit, ~1 s. (RST, IPv4 and UDP are immediate.)
 *   'timeout'          nothing came back within timeoutMs (silent drop).
 *                      `phase` tells whether the TCP handshake completed.
 *   'reset'            connection reset after it was established.
 *   'host-unreachable' / 'net-unreachable' / 'admin-prohibited'  ICMP errors.
 *   'empty-response'   TCP connected but the peer closed without answering.
 *   anything else      the raw errno code / message.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export type ProbeProto = 'tcp' | 'udp';

export interface ProbeOptions {
  proto: ProbeProto;
  host: string;
  port: number;
  /** How long to wait for an answer (default 3000 ms: a probe that must fail says how long it waits). */
  timeoutMs?: number;
  /** Local address to bind the probing socket to (must exist in the namespace). */
  bind?: string;
  /**
   * Local (source) port, e.g. to send several UDP probes as one conntrack flow
   * (default: an ephemeral port). Over TCP a fixed port is only reusable once
   * the previous connection with it has left TIME_WAIT (the server closes
   * first, so it usually is at once).
   */
  sourcePort?: number;
  /** HTTP path for TCP probes (default "/"). */
  path?: string;
}

export interface ProbeSuccess {
  ok: true;
  /** Pod name the server answered with. */
  pod: string;
  /** Source address of the probe as seen by the server (e.g. masquerade address). */
  from: string;
  /** Source port as seen by the server (0 if unknown). */
  fromPort: number;
  ms: number;
  /** Raw HTTP body / UDP payload. */
  body: string;
}

export interface ProbeFailure {
  ok: false;
  error: 'refused' | 'timeout' | 'reset' | 'host-unreachable' | 'net-unreachable' | 'empty-response' | (string & {});
  ms: number;
  /** For TCP timeouts: 'connect' (no handshake) or 'response' (handshake done, no answer). */
  phase?: 'connect' | 'response';
  detail?: string;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

const ERRNO_MAP: Record<string, string> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  EHOSTUNREACH: 'host-unreachable',
  ENETUNREACH: 'net-unreachable',
  EACCES: 'admin-prohibited',
  EPERM: 'admin-prohibited',
  ETIMEDOUT: 'timeout',
};

function classify(err: unknown): { error: string; detail: string } {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const detail = e instanceof Error ? e.message : String(err);
  if (code && ERRNO_MAP[code]) return { error: ERRNO_MAP[code], detail };
  return { error: code ?? detail, detail };
}

function parsePayload(text: string): { pod: string; from: string; fromPort: number } {
  // "<pod>\n<ip>:<port>\n"
  const [pod = '', src = ''] = text.split('\n');
  const idx = src.lastIndexOf(':');
  const from = idx >= 0 ? src.slice(0, idx) : src;
  const fromPort = idx >= 0 ? Number(src.slice(idx + 1)) || 0 : 0;
  return { pod: pod.trim(), from: from.trim(), fromPort };
}

function tcpProbe(o: ProbeOptions, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  const elapsed = (): number => Math.round(performance.now() - t0);
  return new Promise<ProbeResult>((resolve) => {
    let phase: 'connect' | 'response' = 'connect';
    let done = false;
    const chunks: Buffer[] = [];
    const sock = new net.Socket();
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', ms: elapsed(), phase }), timeoutMs);
    sock.on('connect', () => {
      phase = 'response';
      sock.write(`GET ${o.path ?? '/'} HTTP/1.0\r\nHost: ${o.host}:${o.port}\r\nUser-Agent: kpt-probe\r\n\r\n`);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (raw.length === 0) {
        finish({ ok: false, error: 'empty-response', ms: elapsed(), phase });
        return;
      }
      const sep = raw.indexOf('\r\n\r\n');
      const head = sep >= 0 ? raw.slice(0, sep) : raw;
      const body = sep >= 0 ? raw.slice(sep + 4) : '';
      const headers = new Map<string, string>();
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      let pod = headers.get('x-pod') ?? body.split('\n')[0]?.trim() ?? '';
      let from = headers.get('x-source-ip') ?? '';
      let fromPort = Number(headers.get('x-source-port') ?? 0) || 0;
      if (o.path === '/whoami') {
        try {
          const j = JSON.parse(body) as { pod?: string; from?: string; fromPort?: number };
          pod = j.pod ?? pod;
          from = j.from ?? from;
          fromPort = j.fromPort ?? fromPort;
        } catch {
          /* not JSON: keep header values */
        }
      }
      finish({ ok: true, pod, from, fromPort, ms: elapsed(), body });
    });
    sock.on('error', (err) => {
      const c = classify(err);
      finish({ ok: false, error: c.error, detail: c.detail, ms: elapsed(), phase });
    });
    try {
      sock.connect({
        host: o.host,
        port: o.port,
        ...(o.bind ? { localAddress: o.bind } : {}),
        ...(o.sourcePort ? { localPort: o.sourcePort } : {}),
      });
    } catch (err) {
      const c = classify(err);
      finish({ ok: false, error: c.error, detail: c.detail, ms: elapsed(), phase });
    }
  });
}

function udpProbe(o: ProbeOptions, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  const elapsed = (): number => Math.round(performance.now() - t0);
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    // The socket's family follows the target (or the bound address): 'udp4' for IPv4, 'udp6' for IPv6.
    const v6 = net.isIPv6(o.bind ?? o.host);
    const sock = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    };
    const fail = (err: unknown): void => {
      const c = classify(err);
      finish({ ok: false, error: c.error, detail: c.detail, ms: elapsed() });
    };
    let sendDetail: string | undefined;
    const timer = setTimeout(
      () => finish({ ok: false, error: 'timeout', ms: elapsed(), ...(sendDetail ? { detail: sendDetail } : {}) }),
      timeoutMs,
    );
    sock.on('error', fail);
    sock.on('message', (msg) => {
      const body = msg.toString('utf8');
      finish({ ok: true, ...parsePayload(body), ms: elapsed(), body });
    });
    const go = (): void => {
      sock.connect(o.port, o.host, () => {
        sock.send('probe\n', (err) => {
          if (!err) return;
          // A locally generated datagram dropped by netfilter (nat/filter OUTPUT,
          // DROP *or* REJECT) makes sendmsg() fail with EPERM. With REJECT the
          // ICMP port-unreachable still arrives on the connected socket
          // (-> 'refused'); with DROP nothing does (-> 'timeout'). So keep waiting,
          // exactly as for a remote peer.
          if ((err as NodeJS.ErrnoException).code === 'EPERM') {
            sendDetail = 'send EPERM (dropped by local netfilter)';
            return;
          }
          fail(err);
        });
      });
    };
    try {
      if (o.bind || o.sourcePort) sock.bind({ port: o.sourcePort ?? 0, ...(o.bind ? { address: o.bind } : {}) }, go);
      else go();
    } catch (err) {
      fail(err);
    }
  });
}

/** Run one probe from the current process' network namespace. */
export async function runProbe(o: ProbeOptions): Promise<ProbeResult> {
  const timeoutMs = o.timeoutMs ?? 3000;
  if (o.proto === 'tcp') return tcpProbe(o, timeoutMs);
  if (o.proto === 'udp') return udpProbe(o, timeoutMs);
  return { ok: false, error: `bad proto ${String(o.proto)}`, ms: 0 };
}

/**
 * Answer probe requests arriving as JSON lines on stdin with JSON lines on
 * stdout (see the header comment). Calls onClose when stdin ends. Used by
 * `probe.js --serve` and by `podserver.js --probe-stdio`.
 */
export function serveProbeRequests(onClose: () => void): void {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let pending = 0;
  let closed = false;
  const settle = (): void => {
    pending--;
    if (closed && pending === 0) onClose();
  };
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let req: ProbeOptions & { id: number };
    try {
      req = JSON.parse(line) as ProbeOptions & { id: number };
    } catch {
      return;
    }
    pending++;
    runProbe(req)
      .then(
        (result) => process.stdout.write(JSON.stringify({ id: req.id, result }) + '\n'),
        (err: unknown) =>
          process.stdout.write(JSON.stringify({ id: req.id, result: { ok: false, error: String(err), ms: 0 } }) + '\n'),
      )
      .finally(settle);
  });
  // stdin closed: finish the probes in flight, then close.
  rl.on('close', () => {
    closed = true;
    if (pending === 0) onClose();
  });
}

function serve(): void {
  serveProbeRequests(() => process.exit(0));
  process.stdout.write('READY\n');
}

async function cli(argv: string[]): Promise<void> {
  if (argv[0] === '--serve') {
    serve();
    return;
  }
  const [proto, host, port, ...rest] = argv;
  if ((proto !== 'tcp' && proto !== 'udp') || !host || !port) {
    process.stderr.write('usage: probe.js tcp|udp HOST PORT [--timeout MS] [--bind IP] [--sport PORT] [--path P] | probe.js --serve\n');
    process.exit(2);
  }
  const o: ProbeOptions = { proto, host, port: Number(port) };
  for (let i = 0; i < rest.length; i += 2) {
    const v = rest[i + 1];
    if (rest[i] === '--timeout') o.timeoutMs = Number(v);
    else if (rest[i] === '--bind') o.bind = v;
    else if (rest[i] === '--sport') o.sourcePort = Number(v);
    else if (rest[i] === '--path') o.path = v;
    else {
      process.stderr.write(`probe: unknown argument ${rest[i]}\n`);
      process.exit(2);
    }
  }
  const r = await runProbe(o);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exitCode = r.ok ? 0 : 1;
}

function isMainModule(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(argv1)).href;
  } catch {
    return import.meta.url === pathToFileURL(argv1).href;
  }
}
const isMain = isMainModule();
if (isMain) {
  cli(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`probe: ${String(err)}\n`);
    process.exit(2);
  });
}
