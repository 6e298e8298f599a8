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

/**
 * Listens on its bind address (`IP:port`, `[IPv6]:port`, or a bare IP for the
 * default port; port 0 picks a free port; '' disables it). start() rejects
 * with a BindAddressError naming the flag when the address is malformed or
 * cannot be bound.
 */
export class HealthzServer extends HttpEndpoint {
  constructor(private readonly opts: HealthzServerOptions) {
    super(HEALTHZ_FLAG, DEFAULT_HEALTHZ_PORT);
  }

  protected override handle(req: IncomingMessage, res: ServerResponse): void {
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
