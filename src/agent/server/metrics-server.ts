/**
 * The metrics server for `--metrics-bind-address` (default 127.0.0.1:10249).
 * Serves what upstream's metrics mux serves that has a meaning here:
 *
 * - `/metrics`: the Prometheus text exposition (prom-client's content type).
 * - `/healthz`, `/healthz/ping`: component-base's ping check, `ok`
 *   (`?verbose` lists the check), text/plain with nosniff. It says the
 *   process answers, not that the proxy is healthy (that is the healthz port).
 * - `/proxyMode`: the proxy mode, text/plain.
 *
 * Every other path is Go's 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_METRICS_PORT, HttpEndpoint, requestPath, sendNotFound, sendText } from './listen.js';
import type { ProxyMetrics } from './metrics.js';

export const METRICS_FLAG = '--metrics-bind-address';

export interface MetricsServerOptions {
  metrics: Pick<ProxyMetrics, 'metrics' | 'contentType'>;
  /** What /proxyMode answers (e.g. `iptables`). Without it, /proxyMode is 404. */
  proxyMode?: string;
}

/**
 * Listens on its bind address (`IP:port`, `[IPv6]:port`, or a bare IP for the
 * default port; port 0 picks a free port; '' disables it). start() rejects
 * with a BindAddressError naming the flag when the address is malformed or
 * cannot be bound.
 */
export class MetricsServer extends HttpEndpoint {
  constructor(private readonly opts: MetricsServerOptions) {
    super(METRICS_FLAG, DEFAULT_METRICS_PORT);
  }

  protected override handle(req: IncomingMessage, res: ServerResponse): void {
    const { path, query } = requestPath(req);
    switch (path) {
      case '/metrics':
        void this.serveMetrics(res);
        return;
      case '/healthz':
        sendText(res, 200, query.has('verbose') ? '[+]ping ok\nhealthz check passed\n' : 'ok');
        return;
      case '/healthz/ping':
        sendText(res, 200, 'ok');
        return;
      case '/proxyMode':
        if (this.opts.proxyMode !== undefined) {
          sendText(res, 200, this.opts.proxyMode);
          return;
        }
        break;
    }
    sendNotFound(res);
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.opts.metrics.metrics();
      res.writeHead(200, { 'Content-Type': this.opts.metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    } catch (err) {
      if (!res.headersSent) sendText(res, 500, `An error has occurred while serving metrics:\n\n${(err as Error).message}\n`);
      else res.destroy();
    }
  }
}
