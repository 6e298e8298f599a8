import t from 'tap';
import { categorizeEndpoints } from '../../src/agent/model/endpoint-selection.js';
import { onlyPort, service, slice, snapshotOf } from '../helpers/model.js';
import type { EpSpec } from '../helpers/model.js';

const ips = (eps: { address: string }[]): string[] => eps.map((e) => e.address);

function categorize(eps: EpSpec[], over: Parameters<typeof service>[0] = { name: 'web' }) {
  return categorizeEndpoints(onlyPort(snapshotOf([service(over)], [slice(over.name, eps)])));
}

t.test('ready endpoints are used; not-ready ones are not', async (t) => {
  const c = categorize([{ ip: '10.244.1.2' }, { ip: '10.244.1.3', ready: false }]);
  t.same(ips(c.clusterEndpoints), ['10.244.1.2']);
  t.ok(c.hasAnyEndpoints);
});

t.test('serving+terminating endpoints are used only when no endpoint is ready', async (t) => {
  const withReady = categorize([{ ip: '10.244.1.2' }, { ip: '10.244.1.3', ready: false, serving: true, terminating: true }]);
  t.same(ips(withReady.clusterEndpoints), ['10.244.1.2']);
  const fallback = categorize([
    { ip: '10.244.1.3', ready: false, serving: true, terminating: true },
    { ip: '10.244.1.4', ready: false, serving: false, terminating: true },
  ]);
  t.same(ips(fallback.clusterEndpoints), ['10.244.1.3']);
});

t.test('no usable endpoint: nothing, and hasAnyEndpoints is false', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', ready: false, serving: false }]);
  t.same(c.clusterEndpoints, []);
  t.notOk(c.hasAnyEndpoints);
});

t.test('internalTrafficPolicy=Local uses only this node\'s endpoints', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', node: 'node-1' }, { ip: '10.244.2.2', node: 'node-2' }], { name: 'web', internalTrafficPolicy: 'Local' });
  t.same(ips(c.localEndpoints), ['10.244.1.2']);
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2']);
  t.same(c.clusterEndpoints, []);
});

t.test('externalTrafficPolicy=Local on a NodePort keeps cluster endpoints for internal traffic', async (t) => {
  const c = categorize([{ ip: '10.244.1.2', node: 'node-1' }, { ip: '10.244.2.2', node: 'node-2' }], {
    name: 'web',
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }],
  });
  t.same(ips(c.clusterEndpoints), ['10.244.1.2', '10.244.2.2']);
  t.same(ips(c.localEndpoints), ['10.244.1.2']);
  t.same(ips(c.allReachableEndpoints), ['10.244.1.2', '10.244.2.2']);
});

t.test('slices are merged, de-duplicated (ready copy wins) and matched by port name', async (t) => {
  const svc = service({ name: 'web' });
  const a = slice('web', [{ ip: '10.244.1.3' }, { ip: '10.244.1.2', ready: false }], { name: 'web-a' });
  const b = slice('web', [{ ip: '10.244.1.2' }, { ip: '10.244.1.10' }], { name: 'web-b' });
  const other = slice('web', [{ ip: '10.244.9.9' }], { name: 'web-c', ports: [{ name: 'metrics', protocol: 'TCP', port: 9090 }] });
  const sp = onlyPort(snapshotOf([svc], [a, b, other]));
  t.same(sp.endpoints.map((e) => `${e.address}:${e.port}:${e.ready}`), ['10.244.1.2:8080:true', '10.244.1.3:8080:true', '10.244.1.10:8080:true']);
});
