/**
 * The health check server for `--healthz-bind-address` (default
 * 0.0.0.0:10256), as upstream's ProxyHealthServer:
 *
 * - `/healthz`: 200 when the proxy is healthy and the node is eligible, else
 *   503 (e.g. the node is being deleted, so load balancers drain it).
 * - `/livez`: 200 when the proxy is healthy, whatever the node's state.
 * - Both answer `application/json` with `X-Content-Type-Options: nosniff`,
 *   to any method; every other path is Go's 404.
 *
 * Each answer is counted in kubeproxy_proxy_healthz_total /
 * kubeproxy_proxy_livez_total{code} when metrics are given.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { healthResponse } from './health.js';
import type { ProxyHealth } from './health.js';
import { DEFAULT_HEALTHZ_PORT, HttpEndpoint, requestPath, sendNotFound } from './listen.js';
import type { ProxyMetrics } from './metrics.js';

export const HEALTHZ_FLAG = '--healthz-bind-address';

export interface HealthzServerOptions {
  health: ProxyHealth;
  metrics?: Pick<ProxyMetrics, 'recordHealthzResponse' | 'recordLivezResponse'>;
}

export class HealthzServer {
  private readonly endpoint: HttpEndpoint;

  constructor(private readonly opts: HealthzServerOptions) {
    this.endpoint = new HttpEndpoint(HEALTHZ_FLAG, DEFAULT_HEALTHZ_PORT, (req, res) => this.handle(req, res));
  }

  /**
   * Listens on `bindAddress` (`IP:port`, `[IPv6]:port`, or a bare IP for
   * port 10256; port 0 picks a free port). An empty string disables the
   * server. Rejects with a BindAddressError starting `--healthz-bind-address:`
   * when the address is malformed or cannot be bound.
   */
  start(bindAddress: string): Promise<void> {
    return this.endpoint.start(bindAddress);
  }

  get listening(): boolean {
    return this.endpoint.listening;
  }

  /** The bound port, or undefined when not listening. */
  get port(): number | undefined {
    return this.endpoint.port;
  }

  /** The bound `host:port`, or undefined when not listening. */
  get address(): string | undefined {
    return this.endpoint.address;
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const { path } = requestPath(req);
    if (path !== '/healthz' && path !== '/livez') {
      sendNotFound(res);
      return;
    }
    const kind = path === '/healthz' ? 'healthz' : 'livez';
    const { status, body } = healthResponse(this.opts.health, kind);
    if (kind === 'healthz') this.opts.metrics?.recordHealthzResponse(status);
    else this.opts.metrics?.recordLivezResponse(status);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}
