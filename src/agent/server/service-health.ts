/**
 * Per-service health-check node ports for `externalTrafficPolicy: Local`
 * LoadBalancer services, as upstream's ServiceHealthServer
 * (pkg/proxy/healthcheck/service_health.go):
 *
 * - One HTTP listener per service (`namespace/name`) on its
 *   `spec.healthCheckNodePort`, on every configured address (upstream: the
 *   node's nodePortAddresses, or all addresses). `syncServices()` opens the
 *   missing listeners and closes the ones no longer wanted (or whose port
 *   changed); listeners already open are left alone.
 * - A service whose listener cannot be bound (port in use, address gone, …)
 *   is logged and counted; whatever was opened for it is closed again, and it
 *   is retried on the next `syncServices()`. It never stops the others.
 * - `syncEndpoints()` records each service's number of local endpoints
 *   (upstream: distinct IPs of ready endpoints on this node, over all the
 *   service's ports; see `healthCheckInputs`). Services not in the map have 0.
 * - Every request, any method and any path, answers 200 when the service has
 *   local endpoints and the proxy is healthy, else 503, with
 *   `Content-Type: application/json`, `X-Content-Type-Options: nosniff`,
 *   `X-Load-Balancing-Endpoint-Weight: <count>`, and upstream's body, byte for
 *   byte (tab-indented, no trailing newline):
 *   `{"service":{"namespace":…,"name":…},"localEndpoints":N,"serviceProxyHealthy":…}`.
 *   "Healthy" is upstream's `ProxyHealthServer.Health().Healthy`: the /livez
 *   notion (sync not late), without node eligibility.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { ServicePort } from '../model/types.js';
import { parseIP } from '../util/addr.js';
import { formatHostPort } from './listen.js';

/** A bound listener, as returned by a ListenFn. */
export interface HealthListener {
  /** `host:port` actually bound (for logs). */
  readonly address: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/**
 * Binds `port` on `host` (undefined: every address of the host, IPv4 and
 * IPv6 where available, like Go's listen on ":port") and serves `handler`.
 * Rejects when the address cannot be bound.
 */
export type ListenFn = (host: string | undefined, port: number, handler: RequestListener) => Promise<HealthListener>;

export interface ServiceHealthServerOptions {
  /** Upstream's serviceProxyHealthy: proxy health as /livez judges it (e.g. `() => proxyHealth.isHealthy()`). */
  isProxyHealthy: () => boolean;
  log: Logger;
  /**
   * Addresses to listen on (one listener per address and service). Undefined
   * or empty: all addresses (upstream's default when nodePortAddresses match
   * everything).
   */
  addresses?: readonly string[];
  /** The node's name, for log lines (upstream names it in the error). */
  nodeName?: string;
  /** Injectable for tests; default binds a real node:http server. */
  listen?: ListenFn;
  /** Called for every service whose listener failed (e.g. to count it in a metric or emit an event). */
  onListenError?: (service: string, port: number, err: Error) => void;
}

interface Instance {
  port: number;
  listeners: HealthListener[];
}

/** `namespace/name` split at the first slash. */
function splitName(nsn: string): { namespace: string; name: string } {
  const slash = nsn.indexOf('/');
  return slash < 0 ? { namespace: '', name: nsn } : { namespace: nsn.slice(0, slash), name: nsn.slice(slash + 1) };
}

/** Upstream's body (dedented Go template: tab indentation, no trailing newline). */
export function serviceHealthBody(nsn: string, localEndpoints: number, proxyHealthy: boolean): string {
  const { namespace, name } = splitName(nsn);
  return [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    '\t},',
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${proxyHealthy}`,
    '}',
  ].join('\n');
}

function describeError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The default ListenFn: a node:http server, exclusive bind, keep-alive bounded. */
export const listenHttp: ListenFn = async (host, port, handler) => {
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Errors after listening (e.g. EMFILE on accept) must not crash the process.
  server.on('error', () => undefined);
  const bound = server.address();
  const address = typeof bound === 'object' && bound !== null ? formatHostPort(bound.address, bound.port) : `:${port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};

export class ServiceHealthServer {
  private readonly hosts: (string | undefined)[];
  private readonly listen: ListenFn;
  private readonly instances = new Map<string, Instance>();
  private endpointCounts: ReadonlyMap<string, number> = new Map();
  private failures = 0;
  /** Serialises syncServices/close: each waits for the previous one. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ServiceHealthServerOptions) {
    const addresses = opts.addresses ?? [];
    for (const a of addresses) {
      if (!parseIP(a)) throw new Error(`service health server: invalid listen address ${JSON.stringify(a)}`);
    }
    this.hosts = addresses.length === 0 ? [undefined] : [...new Set(addresses.map((a) => parseIP(a)!.address))];
    this.listen = opts.listen ?? listenHttp;
  }

  /**
   * Makes `services` (`namespace/name` → healthCheckNodePort) the set of open
   * health checks. Never rejects: failures are logged, counted and retried on
   * the next call. Calls are serialised.
   */
  syncServices(services: ReadonlyMap<string, number>): Promise<void> {
    const wanted = new Map(services);
    const run = this.queue.then(() => this.doSyncServices(wanted));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Records the local endpoint count of each service (`namespace/name` →
   * count); services not in the map count 0. Takes effect for the next request.
   */
  syncEndpoints(counts: ReadonlyMap<string, number>): void {
    this.endpointCounts = new Map(counts);
  }

  /** Services with open listeners and their ports. */
  get services(): Map<string, number> {
    return new Map([...this.instances].map(([nsn, inst]) => [nsn, inst.port]));
  }

  /** How many times opening a service's listener failed, since start. */
  get listenFailures(): number {
    return this.failures;
  }

  /** Closes every listener. Safe to call twice. */
  close(): Promise<void> {
    const run = this.queue.then(async () => {
      const all = [...this.instances.entries()];
      this.instances.clear();
      await Promise.all(all.map(([nsn, inst]) => this.closeInstance(nsn, inst)));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doSyncServices(wanted: Map<string, number>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [nsn, inst] of this.instances) {
      if (wanted.get(nsn) === inst.port) continue;
      this.opts.log.info(2, 'Closing healthcheck', { service: nsn, port: inst.port });
      this.instances.delete(nsn);
      closing.push(this.closeInstance(nsn, inst));
    }
    // A port freed by one service may be taken by another in the same sync.
    await Promise.all(closing);
    await Promise.all(
      [...wanted].map(async ([nsn, port]) => {
        if (this.instances.has(nsn)) {
          this.opts.log.info(3, 'Existing healthcheck', { service: nsn, port });
          return;
        }
        this.opts.log.info(2, 'Opening healthcheck', { service: nsn, port });
        const inst = await this.openInstance(nsn, port);
        if (inst) this.instances.set(nsn, inst);
      }),
    );
  }

  private async openInstance(nsn: string, port: number): Promise<Instance | undefined> {
    const listeners: HealthListener[] = [];
    try {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}`);
      for (const host of this.hosts) {
        listeners.push(await this.listen(host, port, (req, res) => this.handle(nsn, req, res)));
        this.opts.log.info(3, 'Healthcheck listening', { service: nsn, address: listeners[listeners.length - 1]!.address });
      }
      return { port, listeners };
    } catch (e) {
      const err = describeError(e);
      // Close what was opened, so that a retry (or another owner of the port) can bind it.
      await Promise.all(listeners.map((l) => l.close().catch(() => undefined)));
      this.failures++;
      this.opts.log.error('Failed to start healthcheck', {
        node: this.opts.nodeName,
        service: nsn,
        port,
        err: (err as NodeJS.ErrnoException).code ?? err.message,
        detail: err.message,
      });
      this.opts.onListenError?.(nsn, port, err);
      return undefined;
    }
  }

  private async closeInstance(nsn: string, inst: Instance): Promise<void> {
    await Promise.all(
      inst.listeners.map((l) =>
        l.close().catch((e: unknown) => this.opts.log.error('Error closing server for health check service', { service: nsn, err: describeError(e).message })),
      ),
    );
  }

  private handle(nsn: string, _req: IncomingMessage, res: ServerResponse): void {
    // A request racing with the close of this service's listener: answer as if it had no endpoints.
    const open = this.instances.has(nsn);
    const count = open ? (this.endpointCounts.get(nsn) ?? 0) : 0;
    let healthy: boolean;
    try {
      healthy = this.opts.isProxyHealthy();
    } catch {
      healthy = false;
    }
    const body = serviceHealthBody(nsn, count, healthy);
    res.writeHead(count !== 0 && healthy ? 200 : 503, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(count),
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}

/**
 * What to feed the server from the service ports of a sync (all families
 * together), as upstream computes it:
 * - `services`: `namespace/name` → healthCheckNodePort, for LoadBalancer
 *   services with externalTrafficPolicy Local and a non-zero port
 *   (upstream's NeedsHealthCheck);
 * - `localEndpoints`: `namespace/name` → number of distinct IPs of ready
 *   endpoints on this node, over all the service's ports (terminating
 *   endpoints do not count, so the node fails its check while draining),
 *   for every service that has any.
 */
export function healthCheckInputs(servicePorts: Iterable<ServicePort>): {
  services: Map<string, number>;
  localEndpoints: Map<string, number>;
} {
  const services = new Map<string, number>();
  const ips = new Map<string, Set<string>>();
  for (const sp of servicePorts) {
    const nsn = `${sp.namespace}/${sp.name}`;
    if (sp.type === 'LoadBalancer' && sp.externalTrafficPolicy === 'Local' && sp.healthCheckNodePort !== 0) {
      services.set(nsn, sp.healthCheckNodePort);
    }
    for (const ep of sp.endpoints) {
      if (!ep.isLocal || !ep.ready) continue;
      let set = ips.get(nsn);
      if (!set) ips.set(nsn, (set = new Set()));
      set.add(ep.address);
    }
  }
  return { services, localEndpoints: new Map([...ips].map(([nsn, s]) => [nsn, s.size])) };
}
