import t from 'tap';
import { request } from 'node:http';
import net from 'node:net';
import { memoryLogger } from '../../src/agent/log.js';
import { healthCheckInputs, ServiceHealthServer, serviceHealthBody } from '../../src/agent/server/service-health.js';
import type { ListenFn } from '../../src/agent/server/service-health.js';
import type { ServicePort } from '../../src/agent/model/types.js';
import { endpoint } from '../helpers/model.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path = '/', method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function refused(port: number): Promise<boolean> {
  try {
    await get(port);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

/** Free TCP ports on 127.0.0.1 (bound and released; good enough for a test). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
      const s = net.createServer();
      s.listen({ host: '127.0.0.1', port: 0 }, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function occupy(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port }, () => resolve(s));
  });
}

function makeServer(healthy = { value: true }) {
  const log = memoryLogger();
  const errors: string[] = [];
  const server = new ServiceHealthServer({
    isProxyHealthy: () => healthy.value,
    log,
    addresses: ['127.0.0.1'],
    nodeName: 'node-1',
    onListenError: (svc, port) => errors.push(`${svc}:${port}`),
  });
  return { server, log, errors, healthy };
}

t.test('upstream body, byte for byte', async (t) => {
  t.equal(
    serviceHealthBody('ns/web', 2, true),
    '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
  );
  t.same(JSON.parse(serviceHealthBody('ns/web', 0, false)), { service: { namespace: 'ns', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: false });
});

t.test('a service without local endpoints answers 503; with some, 200', async (t) => {
  const [port] = await freePorts(1);
  const { server, healthy } = makeServer();
  t.teardown(() => server.close());
  await server.syncServices(new Map([['ns/web', port!]]));
  t.same(server.services, new Map([['ns/web', port]]));

  let r = await get(port!);
  t.equal(r.status, 503, 'no endpoints yet');
  t.equal(r.headers['content-type'], 'application/json');
  t.equal(r.headers['x-content-type-options'], 'nosniff');
  t.equal(r.headers['x-load-balancing-endpoint-weight'], '0');
  t.equal(r.body, serviceHealthBody('ns/web', 0, true));

  server.syncEndpoints(new Map([['ns/web', 3], ['ns/other', 1]]));
  r = await get(port!);
  t.equal(r.status, 200);
  t.equal(r.headers['x-load-balancing-endpoint-weight'], '3');
  t.same(JSON.parse(r.body), { service: { namespace: 'ns', name: 'web' }, localEndpoints: 3, serviceProxyHealthy: true });

  r = await get(port!, '/anything?x=1', 'POST');
  t.equal(r.status, 200, 'any path and method is answered');

  healthy.value = false;
  r = await get(port!);
  t.equal(r.status, 503, 'unhealthy proxy → 503 even with endpoints');
  t.same(JSON.parse(r.body), { service: { namespace: 'ns', name: 'web' }, localEndpoints: 3, serviceProxyHealthy: false });

  healthy.value = true;
  server.syncEndpoints(new Map());
  r = await get(port!);
  t.equal(r.status, 503, 'a service missing from the endpoints map has 0');
  t.equal(JSON.parse(r.body).localEndpoints, 0);
});

t.test('syncServices opens, keeps, moves and closes listeners', async (t) => {
  const [p1, p2, p3] = await freePorts(3);
  const { server, log } = makeServer();
  t.teardown(() => server.close());
  await server.syncServices(new Map([['ns/a', p1!], ['ns/b', p2!]]));
  server.syncEndpoints(new Map([['ns/a', 1], ['ns/b', 1]]));
  t.equal((await get(p1!)).status, 200);
  t.equal(JSON.parse((await get(p2!)).body).service.name, 'b');

  const opened = log.lines.filter((l) => l.includes('Opening healthcheck')).length;
  // a stays; b moves to p3
  await server.syncServices(new Map([['ns/a', p1!], ['ns/b', p3!]]));
  t.equal(log.lines.filter((l) => l.includes('Opening healthcheck')).length, opened + 1, 'only the moved service is reopened');
  t.ok(await refused(p2!), 'old port of b closed');
  t.equal(JSON.parse((await get(p3!)).body).service.name, 'b');
  t.equal((await get(p1!)).status, 200);

  // the port freed by b is taken by a new service c in the same sync
  await server.syncServices(new Map([['ns/a', p1!], ['ns/c', p3!]]));
  t.equal(JSON.parse((await get(p3!)).body).service.name, 'c');

  await server.syncServices(new Map());
  t.same(server.services, new Map());
  t.ok(await refused(p1!), 'a closed');
  t.ok(await refused(p3!), 'c closed');
});

t.test('a port that cannot be bound is logged, counted, retried, and does not stop the others', async (t) => {
  const [busy, ok] = await freePorts(2);
  const blocker = await occupy(busy!);
  const { server, log, errors } = makeServer();
  t.teardown(() => server.close());
  const want = new Map([['ns/busy', busy!], ['ns/ok', ok!]]);
  await server.syncServices(want);
  server.syncEndpoints(new Map([['ns/ok', 1], ['ns/busy', 1]]));
  t.equal((await get(ok!)).status, 200, 'the other service is served');
  t.same(server.services, new Map([['ns/ok', ok]]));
  t.equal(server.listenFailures, 1);
  t.same(errors, [`ns/busy:${busy}`]);
  t.ok(log.lines.some((l) => l.includes(' E ') && l.includes('Failed to start healthcheck') && l.includes('service=ns/busy') && l.includes('EADDRINUSE')), 'error logged with the service and reason');

  await server.syncServices(want);
  t.equal(server.listenFailures, 2, 'retried on the next sync (still busy)');

  await new Promise((r) => blocker.close(r));
  await server.syncServices(want);
  t.equal(server.listenFailures, 2);
  t.same(server.services, new Map([['ns/busy', busy], ['ns/ok', ok]]));
  const r = await get(busy!);
  t.equal(r.status, 200, 'opened once the port is free');
  t.equal(JSON.parse(r.body).service.name, 'busy');
});

t.test('several addresses: one listener each; a failing one closes the rest for that service', async (t) => {
  const [port, port2] = await freePorts(2);
  const calls: string[] = [];
  const closed: string[] = [];
  const listen: ListenFn = async (host, p) => {
    calls.push(`${host}:${p}`);
    if (host === '192.0.2.1' && p === port2) throw Object.assign(new Error('cannot assign requested address'), { code: 'EADDRNOTAVAIL' });
    return { address: `${host}:${p}`, close: async () => void closed.push(`${host}:${p}`) };
  };
  const log = memoryLogger();
  const server = new ServiceHealthServer({ isProxyHealthy: () => true, log, addresses: ['127.0.0.1', '192.0.2.1', '127.0.0.1'], listen });
  await server.syncServices(new Map([['ns/a', port!]]));
  t.same(calls, [`127.0.0.1:${port}`, `192.0.2.1:${port}`], 'one listener per distinct address');
  await server.syncServices(new Map([['ns/a', port!], ['ns/b', port2!]]));
  t.same(calls.slice(2), [`127.0.0.1:${port2}`, `192.0.2.1:${port2}`]);
  t.same(closed, [`127.0.0.1:${port2}`], 'what was opened for the failing service is closed again');
  t.same(server.services, new Map([['ns/a', port]]));
  await server.close();
  t.same(closed.slice(1).sort(), [`127.0.0.1:${port}`, `192.0.2.1:${port}`]);
  t.same(server.services, new Map());
});

t.test('default: all addresses (no host given to listen)', async (t) => {
  const hosts: (string | undefined)[] = [];
  const listen: ListenFn = async (host, p) => {
    hosts.push(host);
    return { address: `:${p}`, close: async () => undefined };
  };
  const server = new ServiceHealthServer({ isProxyHealthy: () => true, log: memoryLogger(), listen });
  await server.syncServices(new Map([['ns/a', 30001]]));
  t.same(hosts, [undefined]);
  await server.close();
  t.throws(() => new ServiceHealthServer({ isProxyHealthy: () => true, log: memoryLogger(), addresses: ['not-an-ip'] }), /invalid listen address/);
});

t.test('an invalid port is a logged failure, not a crash', async (t) => {
  const { server, errors } = makeServer();
  await server.syncServices(new Map([['ns/a', 0], ['ns/b', 70000]]));
  t.equal(server.listenFailures, 2);
  t.same(errors.sort(), ['ns/a:0', 'ns/b:70000']);
  await server.close();
});

t.test('healthCheckInputs: LoadBalancer + Local services, distinct local ready endpoint IPs', async (t) => {
  const base = (over: Partial<ServicePort>): ServicePort => ({
    key: 'x', displayName: 'x', namespace: 'ns', name: 'web', portName: 'http', protocol: 'TCP', family: 'IPv4',
    type: 'LoadBalancer', clusterIP: '10.96.0.10', port: 80, nodePort: 30080, externalIPs: [], loadBalancerIPs: ['198.51.100.10'],
    loadBalancerSourceRanges: [], externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None',
    sessionAffinityTimeoutSeconds: 10800, healthCheckNodePort: 32000, endpoints: [], ...over,
  });
  const { services, localEndpoints } = healthCheckInputs([
    base({ portName: 'http', endpoints: [endpoint('10.244.1.2'), endpoint('10.244.1.3'), endpoint('10.244.2.2', { isLocal: false })] }),
    base({ portName: 'https', port: 443, endpoints: [endpoint('10.244.1.2', { port: 8443 }), endpoint('10.244.1.4', { ready: false, serving: true, terminating: true })] }),
    base({ name: 'cluster-policy', externalTrafficPolicy: 'Cluster', endpoints: [endpoint('10.244.1.9')] }),
    base({ name: 'nodeport-local', type: 'NodePort', endpoints: [] }),
    base({ name: 'no-port', healthCheckNodePort: 0 }),
    base({ name: 'draining', healthCheckNodePort: 32001, endpoints: [endpoint('10.244.1.5', { ready: false, serving: true, terminating: true })] }),
  ]);
  t.same(services, new Map([['ns/web', 32000], ['ns/draining', 32001]]));
  t.same(localEndpoints, new Map([['ns/web', 2], ['ns/cluster-policy', 1]]), 'IPs counted once over ports; remote and terminating ones not at all');
});
