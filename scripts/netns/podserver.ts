/**
 * Tiny "pod" server for the network-namespace harness (see topology.ts).
 *
 * Usage (inside a pod namespace):
 *   ip netns exec <pod-ns> node dist/scripts/netns/podserver.js --name pod-a \
 *       [--tcp-port 8080] [--udp-port 5353] [--host ::] [--exit-on-stdin-close]
 *       [--probe-stdio]
 *
 * - TCP (HTTP/1.1) on --tcp-port: every request is answered `200` with body
 *   "<podname>\n" and headers
 *     X-Pod: <podname>
 *     X-Source-Ip: <ip the request came from, as seen by the pod>
 *     X-Source-Port: <its port>
 *   `GET /whoami` answers JSON `{"pod":..,"from":..,"fromPort":..}` instead.
 * - UDP on --udp-port: every datagram is answered with
 *     "<podname>\n<source ip>:<source port>\n"
 * - Both listen on IPv4 and IPv6 (--host :: , one dual-stack socket each, the
 *   default; 0.0.0.0 where IPv6 is unavailable). Source addresses are reported
 *   as plain IPv4 (no ::ffff: prefix) or IPv6 text.
 *
 * Prints a single line `READY <tcpPort> <udpPort>` to stdout once both sockets
 * listen. Exits on SIGTERM/SIGINT and, with --exit-on-stdin-close (which the
 * harness always passes, keeping a pipe to our stdin), as soon as stdin is
 * closed, so it dies with the harness even if that harness crashes.
 *
 * With --probe-stdio (implies --exit-on-stdin-close) the process also serves
 * probe requests from its namespace, speaking probe.ts' JSON-lines protocol on
 * stdin/stdout after the READY line: the harness then needs no extra probe
 * process for pod namespaces.
 */
import http from 'node:http';
import dgram from 'node:dgram';
import { serveProbeRequests } from './probe.js';

interface Args {
  name: string;
  tcpPort: number;
  udpPort: number;
  host: string;
  exitOnStdinClose: boolean;
  probeStdio: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { name: process.env.POD_NAME ?? 'pod', tcpPort: 8080, udpPort: 5353, host: '::', exitOnStdinClose: false, probeStdio: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--name':
        args.name = v ?? args.name;
        i++;
        break;
      case '--tcp-port':
        args.tcpPort = Number(v);
        i++;
        break;
      case '--udp-port':
        args.udpPort = Number(v);
        i++;
        break;
      case '--host':
        args.host = v ?? args.host;
        i++;
        break;
      case '--exit-on-stdin-close':
        args.exitOnStdinClose = true;
        break;
      case '--probe-stdio':
        args.probeStdio = true;
        break;
      default:
        process.stderr.write(`podserver: unknown argument ${a}\n`);
        process.exit(2);
    }
  }
  return args;
}

function stripMapped(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));

  const server = http.createServer((req, res) => {
    const from = stripMapped(req.socket.remoteAddress);
    const fromPort = req.socket.remotePort ?? 0;
    const headers = {
      'X-Pod': args.name,
      'X-Source-Ip': from,
      'X-Source-Port': String(fromPort),
      Connection: 'close',
    };
    // Drain the request body (if any) before answering.
    req.resume();
    const json = req.url === '/whoami';
    const body = json ? JSON.stringify({ pod: args.name, from, fromPort }) + '\n' : args.name + '\n';
    res.writeHead(200, {
      ...headers,
      'Content-Type': json ? 'application/json' : 'text/plain',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 1000;

  // '::' (the default) is one dual-stack socket per protocol: IPv4 peers appear
  // as ::ffff:a.b.c.d (reported without the prefix). Where IPv6 is unavailable
  // the default falls back to 0.0.0.0.
  const listenTcp = (host: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ port: args.tcpPort, host, ipv6Only: false }, () => {
        server.off('error', onError);
        resolve();
      });
    });
  const bindUdp = (host: string): Promise<dgram.Socket> =>
    new Promise<dgram.Socket>((resolve, reject) => {
      const sock = dgram.createSocket(host.includes(':') ? { type: 'udp6', ipv6Only: false } : { type: 'udp4' });
      sock.once('error', (err) => {
        sock.close();
        reject(err);
      });
      sock.bind(args.udpPort, host, () => {
        sock.removeAllListeners('error');
        resolve(sock);
      });
    });
  const noV6 = (err: unknown): boolean => ['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes((err as NodeJS.ErrnoException).code ?? '');
  const defaultHost = !process.argv.includes('--host');
  const [, udp] = await Promise.all([
    listenTcp(args.host).catch((err: unknown) => (defaultHost && noV6(err) ? listenTcp('0.0.0.0') : Promise.reject(err))),
    bindUdp(args.host).catch((err: unknown) => (defaultHost && noV6(err) ? bindUdp('0.0.0.0') : Promise.reject(err))),
  ]);
  udp.on('message', (_msg, rinfo) => {
    // Answer to the peer's address exactly as received (mapped form on a dual-stack socket).
    udp.send(`${args.name}\n${stripMapped(rinfo.address)}:${rinfo.port}\n`, rinfo.port, rinfo.address);
  });
  udp.on('error', (err) => {
    process.stderr.write(`podserver ${args.name}: udp error ${String(err)}\n`);
  });

  const shutdown = (): void => {
    server.close();
    udp.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.stdout.write(`READY ${args.tcpPort} ${args.udpPort}\n`);
  if (args.probeStdio) {
    // Die with our parent too: when the harness goes away, our stdin closes.
    serveProbeRequests(shutdown);
  } else if (args.exitOnStdinClose) {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`podserver: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
