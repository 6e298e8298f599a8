/**
 * What the healthz and metrics servers share: parsing a bind address the way
 * upstream's `--healthz-bind-address` / `--metrics-bind-address` accept it,
 * and an HTTP listener with start/close and clear errors.
 *
 * Accepted forms (as upstream's flag type): `IP:port` (`0.0.0.0:10256`,
 * `127.0.0.1:10249`), `[IPv6]:port` (`[::]:10256`), or a bare IP (`::`,
 * `0.0.0.0`) which gets the server's default port. An empty string disables
 * the server. Host names are refused: upstream wants an IP.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IPFamily } from '../model/types.js';
import { parseIP } from '../util/addr.js';

export const DEFAULT_HEALTHZ_PORT = 10256;
export const DEFAULT_METRICS_PORT = 10249;
export const DEFAULT_HEALTHZ_BIND_ADDRESS = `0.0.0.0:${DEFAULT_HEALTHZ_PORT}`;
export const DEFAULT_METRICS_BIND_ADDRESS = `127.0.0.1:${DEFAULT_METRICS_PORT}`;

export interface BindAddress {
  /** Canonical IP text, without brackets. */
  host: string;
  port: number;
  family: IPFamily;
}

/** A malformed bind address or a failure to listen; the message starts with the flag name. */
export class BindAddressError extends Error {
  constructor(
    readonly flag: string,
    detail: string,
    readonly code?: string,
  ) {
    super(`${flag}: ${detail}`);
    this.name = 'BindAddressError';
  }
}

export interface ParseBindAddressOptions {
  /** Used when the text is a bare IP (upstream appends its default port). */
  defaultPort: number;
  /**
   * Accept port 0 (the kernel picks a free port). Upstream's validation
   * refuses it ("must be a valid port", 1-65535); the servers' `start()`
   * accepts it so tests and embedders can ask for a random port.
   */
  allowPortZero?: boolean;
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses a bind address; `undefined` means "disabled" (empty text).
 * Throws BindAddressError naming `flag` when the text is malformed.
 */
export function parseBindAddress(flag: string, text: string, opts: ParseBindAddressOptions): BindAddress | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  const bare = parseIP(s);
  if (bare) return { host: bare.address, port: opts.defaultPort, family: bare.family };

  let hostText: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw new BindAddressError(flag, `${JSON.stringify(text)} must be IP:port (e.g. [::]:${opts.defaultPort})`);
    hostText = s.slice(1, close);
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw new BindAddressError(flag, `${JSON.stringify(text)} must be IP:port (e.g. 0.0.0.0:${opts.defaultPort})`);
    hostText = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (hostText.includes(':')) throw new BindAddressError(flag, `${JSON.stringify(text)}: an IPv6 address with a port must be in brackets, e.g. [::]:${opts.defaultPort}`);
  }
  const ip = parseIP(hostText);
  if (!ip) throw new BindAddressError(flag, `${JSON.stringify(hostText)} in ${JSON.stringify(text)} must be a valid IP address`);
  if (!/^\d{1,5}$/.test(portText)) throw new BindAddressError(flag, `${JSON.stringify(portText)} in ${JSON.stringify(text)} must be a valid port`);
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) throw new BindAddressError(flag, `${JSON.stringify(portText)} in ${JSON.stringify(text)} must be a valid port (${min}-65535)`);
  return { host: ip.address, port, family: ip.family };
}

/** Writes a plain-text response with the headers Go's net/http error helpers set. */
export function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Go's http.NotFound, byte for byte. */
export function sendNotFound(res: ServerResponse): void {
  sendText(res, 404, '404 page not found\n');
}

/** The request path without the query string. */
export function requestPath(req: IncomingMessage): { path: string; query: URLSearchParams } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

function listenError(flag: string, where: string, err: NodeJS.ErrnoException): BindAddressError {
  switch (err.code) {
    case 'EADDRINUSE':
      return new BindAddressError(flag, `cannot listen on ${where}: address already in use`, err.code);
    case 'EADDRNOTAVAIL':
      return new BindAddressError(flag, `cannot listen on ${where}: address not available on this host`, err.code);
    case 'EACCES':
      return new BindAddressError(flag, `cannot listen on ${where}: permission denied`, err.code);
    default:
      return new BindAddressError(flag, `cannot listen on ${where}: ${err.message}`, err.code);
  }
}

/**
 * One HTTP server bound to one address. `start()` resolves once listening,
 * or does nothing when the address is empty (disabled).
 */
export class HttpEndpoint {
  private server: Server | undefined;
  private bound: BindAddress | undefined;

  constructor(
    /** The flag named in errors, e.g. `--healthz-bind-address`. */
    readonly flag: string,
    private readonly defaultPort: number,
    /** Answers requests; without it, subclasses override handle(). */
    private readonly handler?: RequestListener,
  ) {}

  /** Answers a request (404 unless overridden or a handler was given). */
  protected handle(_req: IncomingMessage, res: ServerResponse): void {
    sendNotFound(res);
  }

  /** Parses `bindAddress` and listens; port 0 picks a free port (see `port`). */
  async start(bindAddress: string): Promise<void> {
    if (this.server) throw new BindAddressError(this.flag, `already listening on ${this.address}`);
    const want = parseBindAddress(this.flag, bindAddress, { defaultPort: this.defaultPort, allowPortZero: true });
    if (!want) return;
    const server = createServer((req, res) => {
      try {
        if (this.handler) this.handler(req, res);
        else this.handle(req, res);
      } catch (err) {
        if (!res.headersSent) sendText(res, 500, `internal server error: ${(err as Error).message}\n`);
        else res.destroy();
      }
    });
    server.keepAliveTimeout = 5_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(this.flag, formatHostPort(want.host, want.port), err));
      server.once('error', onError);
      server.listen({ host: want.host, port: want.port, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Errors after listening (rare: e.g. EMFILE on accept) must not crash the process.
    server.on('error', () => undefined);
    const actual = server.address() as AddressInfo;
    this.server = server;
    this.bound = { host: want.host, port: actual.port, family: want.family };
  }

  /** Whether the server is listening. */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** The port actually bound (useful with port 0), or undefined when not listening. */
  get port(): number | undefined {
    return this.bound?.port;
  }

  /** `host:port` actually bound, or undefined when not listening. */
  get address(): string | undefined {
    return this.bound ? formatHostPort(this.bound.host, this.bound.port) : undefined;
  }

  /** Stops listening and drops open connections. Safe to call twice. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
