/**
 * Drives the UNMODIFIED @kubernetes/client-node 1.4 informers against the fake API server
 * (test/helpers/fake-apiserver.ts) and checks the raw list/watch protocol it speaks.
 *
 * What client-node 1.4's informer (ListWatch) does, as asserted below:
 *  - start(): emits 'connect', LISTs (listFn) if it has no resourceVersion, then WATCHes from the list's RV.
 *    It never sends timeoutSeconds / allowWatchBookmarks (put them in the path's query string if wanted).
 *  - watch stream ended cleanly by the server: 'connect' again and re-watch from the last seen RV (by itself).
 *  - ERROR event 410 Expired (or HTTP 410 on the watch): re-LIST by itself; objects gone in the meantime get 'delete'.
 *  - HTTP 503 (any non-410 status) on the watch: 'error' (Error, .statusCode = 503), then it stays stopped.
 *  - HTTP 503 on the list: 'error' (ApiException, .code = 503), stays stopped.
 *  - watch connection reset: 'error' (code ERR_STREAM_PREMATURE_CLOSE), stays stopped.
 *  - connection refused: 'error' (FetchError, code ECONNREFUSED), stays stopped.
 *  - stop(): also emits 'error' (AbortError) asynchronously. A restart-on-error handler must ignore it.
 *  - start() after an error resumes: re-watch from the retained RV (or re-list if it had none / got 410).
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import * as k8s from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor, parseLabelSelector, labelsMatch, type FakeApiServerOptions } from '../helpers/fake-apiserver.js';

const HEADLESS = 'service.kubernetes.io/headless';
const NOT_HEADLESS = `!${HEADLESS}`;

// ---------------------------------------------------------------------------
// helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyErr = any;

interface Recorder<T extends k8s.KubernetesObject> {
  events: string[];
  errors: AnyErr[];
  connects: number;
  informer: k8s.Informer<T> & k8s.ObjectCache<T>;
}

/** Records 'add:ns/name', 'update:...', 'delete:...', errors and connects. */
function record<T extends k8s.KubernetesObject>(informer: k8s.Informer<T> & k8s.ObjectCache<T>): Recorder<T> {
  const r: Recorder<T> = { events: [], errors: [], connects: 0, informer };
  const id = (o: T) => `${o.metadata?.namespace ? o.metadata.namespace + '/' : ''}${o.metadata?.name}`;
  informer.on(k8s.ADD, (o) => r.events.push(`add:${id(o)}`));
  informer.on(k8s.UPDATE, (o) => r.events.push(`update:${id(o)}`));
  informer.on(k8s.DELETE, (o) => r.events.push(`delete:${id(o)}`));
  informer.on(k8s.ERROR, (e) => r.errors.push(e));
  informer.on(k8s.CONNECT, () => r.connects++);
  return r;
}

/** makeInformer() returns a ListWatch, but its declared type hides latestResourceVersion(). */
const rvOf = (inf: k8s.Informer<k8s.V1Service>) => (inf as unknown as k8s.ListWatch<k8s.V1Service>).latestResourceVersion();

const names = (inf: k8s.ObjectCache<k8s.KubernetesObject>) => inf.list().map((o) => o.metadata!.name!).sort();

async function startServer(t: Test, opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(opts);
  t.teardown(() => api.close());
  return api;
}

/** Stops an informer in teardown (before the server is closed: teardowns run in reverse order). */
function autoStop(t: Test, inf: k8s.Informer<k8s.KubernetesObject>): void {
  t.teardown(() => inf.stop());
}

function svc(name: string, labels?: Record<string, string>, ns = 'ns') {
  return { metadata: { name, namespace: ns, labels }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] } };
}

function serviceInformer(api: FakeApiServer, labelSelector?: string, pathSuffix = '') {
  const kc = kubeConfigFor(api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return k8s.makeInformer<k8s.V1Service>(
    kc,
    '/api/v1/services' + pathSuffix,
    () => core.listServiceForAllNamespaces(labelSelector ? { labelSelector } : {}),
    labelSelector,
  );
}

/** A FakeApiServer (its TCP url) or a unix socket. */
type Target = FakeApiServer | { socketPath: string };

function reqOpts(target: Target, path: string): http.RequestOptions {
  if (!(target instanceof FakeApiServer)) return { socketPath: target.socketPath, path, agent: false };
  const u = new URL(target.url);
  return { host: u.hostname, port: Number(u.port), path, agent: false };
}

/** Plain GET, body parsed as JSON when possible. */
function get(target: Target, path: string): Promise<{ status: number; body: AnyErr }> {
  return new Promise((resolve, reject) => {
    const req = http.get(reqOpts(target, path), (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => {
        let body: AnyErr = data;
        try {
          body = JSON.parse(data);
        } catch {
          /* text */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
  });
}

interface RawWatch {
  status: number;
  events: { type: string; object: AnyErr }[];
  ended: Promise<void>;
  close(): void;
}

/** Opens a raw watch stream and collects its newline-delimited JSON events. */
function rawWatch(target: Target, path: string): Promise<RawWatch> {
  return new Promise((resolve, reject) => {
    const req = http.get(reqOpts(target, path), (res) => {
      const w: RawWatch = {
        status: res.statusCode ?? 0,
        events: [],
        ended: new Promise((r) => {
          res.on('end', () => r());
          res.on('close', () => r());
          res.on('error', () => r());
        }),
        close: () => req.destroy(),
      };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) w.events.push(JSON.parse(line));
        }
      });
      resolve(w);
    });
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// informer behaviour

t.test('initial list, then ADDED/MODIFIED/DELETED reach the handlers and list()', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('a'));
  api.create('services', svc('b', undefined, 'other'));
  const inf = serviceInformer(api);
  const r = record(inf);
  autoStop(t, inf);

  await inf.start();
  t.same(r.events.sort(), ['add:ns/a', 'add:other/b'], 'initial list delivers adds');
  t.equal(r.connects, 1);
  t.equal(api.count('services', 'list'), 1);
  await api.waitForWatches(1, 'services');
  const watchReq = api.requestLog.find((x) => x.verb === 'watch')!;
  t.equal(watchReq.resourceVersion, api.resourceVersion, 'watch starts at the list resourceVersion');

  r.events.length = 0;
  api.create('services', svc('c'));
  const b = api.get('services', 'other', 'b')!;
  b.spec.clusterIP = '10.96.0.99';
  api.update('services', b);
  api.delete('services', 'ns', 'a');
  await waitFor(() => r.events.length >= 3, 'three events');
  t.same(r.events, ['add:ns/c', 'update:other/b', 'delete:ns/a']);
  t.same(names(inf), ['b', 'c']);
  t.equal(inf.get('b', 'other')!.spec!.clusterIP, '10.96.0.99');
  t.equal(rvOf(inf), api.resourceVersion);

  // apply = create-or-update
  api.apply('services', svc('c', { x: 'y' }));
  api.apply('services', svc('d'));
  await waitFor(() => r.events.length >= 5, 'apply events');
  t.same(r.events.slice(3), ['update:ns/c', 'add:ns/d']);

  // quirk: list items are deserialised model objects (Date), watch objects are raw JSON (string)
  t.type(inf.get('b', 'other')!.metadata!.creationTimestamp, 'string', 'watched object: raw JSON');
  t.equal(r.errors.length, 0, 'no errors');
});

t.test('stop() makes the informer emit an AbortError "error" event', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  const inf = serviceInformer(api);
  const r = record(inf);
  await inf.start();
  await api.waitForWatches(1);
  await inf.stop();
  await waitFor(() => r.errors.length === 1, 'abort error');
  t.equal(r.errors[0].name, 'AbortError');
  await waitFor(() => api.watchCount() === 0, 'watch closed on the server');
  await sleep(100);
  t.equal(r.connects, 1, 'no restart after stop()');
});

t.test('list objects from the list call are typed models with Date timestamps', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  const created = api.create('services', svc('a'));
  t.match(created.metadata, { namespace: 'ns', name: 'a', resourceVersion: String(Number(api.resourceVersion)) });
  t.match(created.metadata.uid, /^[0-9a-f-]{36}$/);
  t.match(created.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.equal(api.create('services', { metadata: { name: 'dflt' } }).metadata.namespace, 'default');
  t.equal(api.create('nodes', { metadata: { name: 'n', namespace: 'x' } }).metadata.namespace, undefined);
  t.throws(() => api.create('services', svc('a')), { code: 409 });
  t.throws(() => api.update('services', svc('zz')), { code: 404 });
  t.throws(() => api.delete('services', 'ns', 'zz'), { code: 404 });

  const core = kubeConfigFor(api).makeApiClient(k8s.CoreV1Api);
  const list = await core.listServiceForAllNamespaces({});
  t.equal(list.metadata!.resourceVersion, api.resourceVersion);
  t.equal(list.items.length, 2);
  t.ok(list.items[0]!.metadata!.creationTimestamp instanceof Date, 'creationTimestamp is a Date in list results');
  const nsList = await core.listNamespacedService({ namespace: 'ns' });
  t.same(
    nsList.items.map((s) => s.metadata!.name),
    ['a'],
  );
});

t.test('label selectors filter lists and watches', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('plain'));
  api.create('services', svc('headless', { [HEADLESS]: '' }));
  const inf = serviceInformer(api, NOT_HEADLESS);
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  t.same(names(inf), ['plain'], 'headless service filtered from the list');
  t.same(api.labelSelectorsUsed('services', 'list'), [NOT_HEADLESS]);
  t.same(api.labelSelectorsUsed('services', 'watch'), [NOT_HEADLESS], 'informer passes its selector on the watch');

  r.events.length = 0;
  api.create('services', svc('h2', { [HEADLESS]: 'true' }));
  api.update('services', svc('plain', { [HEADLESS]: '' })); // starts matching the exclusion → DELETED
  api.update('services', svc('headless', {})); // stops being headless → ADDED
  api.create('services', svc('last'));
  await waitFor(() => r.events.includes('add:ns/last'), 'last');
  t.same(r.events, ['delete:ns/plain', 'add:ns/headless', 'add:ns/last']);
  t.same(names(inf), ['headless', 'last']);
  t.equal(r.errors.length, 0);
});

t.test('label selector grammar', async (t) => {
  const L = { app: 'web', tier: 'fe', n: '5' };
  const m = (s: string) => labelsMatch(parseLabelSelector(s), L);
  t.ok(m(''));
  t.ok(m('app'));
  t.notOk(m('!app'));
  t.ok(m('!missing'));
  t.ok(m('app=web'));
  t.ok(m('app==web'));
  t.notOk(m('app!=web'));
  t.ok(m('missing!=x'));
  t.ok(m('app in (web, db)'));
  t.notOk(m('app in (db)'));
  t.ok(m('app notin (db)'));
  t.ok(m('missing notin (db)'));
  t.notOk(m('missing in (db)'));
  t.ok(m('app=web,tier in (fe,be),!missing'));
  t.notOk(m('app=web,tier=be'));
  t.ok(m('n>4'));
  t.notOk(m('n<4'));
  t.throws(() => parseLabelSelector('a in b'));
  t.throws(() => parseLabelSelector('=x'));

  const api = await startServer(t);
  api.create('services', svc('a', { app: 'web' }));
  api.create('services', svc('b', { app: 'db' }));
  api.create('services', svc('c'));
  const ls = async (sel: string) =>
    (await get(api, `/api/v1/services?labelSelector=${encodeURIComponent(sel)}`)).body.items.map((i: AnyErr) => i.metadata.name);
  t.same(await ls('app in (web,db)'), ['a', 'b']);
  t.same(await ls('app notin (web)'), ['b', 'c']);
  t.same(await ls('app!=db'), ['a', 'c']);
  t.same(await ls('!app'), ['c']);
  const bad = await get(api, '/api/v1/services?labelSelector=' + encodeURIComponent('a in b'));
  t.equal(bad.status, 400);
  t.match(bad.body, { kind: 'Status', code: 400, reason: 'BadRequest' });
});

t.test('field selector metadata.name on nodes (list, ListWatch fieldSelector, and path query)', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('nodes', { metadata: { name: 'node-1', labels: { a: 'b' } } });
  api.create('nodes', { metadata: { name: 'node-2' } });
  const kc = kubeConfigFor(api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const fieldSelector = 'metadata.name=node-1';

  const nl = await core.listNode({ fieldSelector });
  t.same(
    nl.items.map((n) => n.metadata!.name),
    ['node-1'],
  );

  // makeInformer() has no fieldSelector parameter; ListWatch's constructor does (6th argument).
  const lw = new k8s.ListWatch<k8s.V1Node>('/api/v1/nodes', new k8s.Watch(kc), () => core.listNode({ fieldSelector }), false, undefined, fieldSelector);
  // ...or put it in the path: Watch appends its own query parameters to it.
  const viaPath = k8s.makeInformer<k8s.V1Node>(kc, `/api/v1/nodes?fieldSelector=${encodeURIComponent(fieldSelector)}`, () => core.listNode({ fieldSelector }));
  const r1 = record(lw);
  const r2 = record(viaPath);
  autoStop(t, lw);
  autoStop(t, viaPath);
  await lw.start();
  await viaPath.start();
  await api.waitForWatches(2, 'nodes');
  t.same(api.fieldSelectorsUsed('nodes', 'watch'), [fieldSelector]);
  t.same(names(lw), ['node-1']);
  t.same(names(viaPath), ['node-1']);

  api.update('nodes', { metadata: { name: 'node-2', labels: { x: 'y' } } });
  api.update('nodes', { metadata: { name: 'node-1', labels: { x: 'y' } } });
  await waitFor(() => r1.events.length === 2 && r2.events.length === 2, 'node-1 update');
  t.same(r1.events, ['add:node-1', 'update:node-1']);
  t.same(r2.events, ['add:node-1', 'update:node-1']);
  t.same(lw.get('node-1')!.metadata!.labels, { x: 'y' });

  const one = await core.readNode({ name: 'node-2' });
  t.equal(one.metadata!.name, 'node-2');
  await t.rejects(core.readNode({ name: 'nope' }), { code: 404 });
  const badField = await get(api, '/api/v1/nodes?fieldSelector=spec.foo%3Dx');
  t.equal(badField.status, 400);
});

t.test('EndpointSlice and ServiceCIDR informers', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  const kc = kubeConfigFor(api);
  const disc = kc.makeApiClient(k8s.DiscoveryV1Api);
  const net = kc.makeApiClient(k8s.NetworkingV1Api);
  api.create('endpointslices', {
    metadata: { name: 'a-xyz', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'a' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  api.create('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16'] } });

  const eps = k8s.makeInformer<k8s.V1EndpointSlice>(
    kc,
    '/apis/discovery.k8s.io/v1/endpointslices',
    () => disc.listEndpointSliceForAllNamespaces({ labelSelector: '!service.kubernetes.io/headless' }),
    '!service.kubernetes.io/headless',
  );
  const nsEps = k8s.makeInformer<k8s.V1EndpointSlice>(kc, '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices', () =>
    disc.listNamespacedEndpointSlice({ namespace: 'ns' }),
  );
  const cidrs = k8s.makeInformer<k8s.V1ServiceCIDR>(kc, '/apis/networking.k8s.io/v1/servicecidrs', () => net.listServiceCIDR({}));
  const re = record(eps);
  const rn = record(nsEps);
  const rc = record(cidrs);
  for (const i of [eps, nsEps, cidrs]) autoStop(t, i);
  await Promise.all([eps.start(), nsEps.start(), cidrs.start()]);
  await api.waitForWatches(2, 'endpointslices');
  await api.waitForWatches(1, 'servicecidrs');
  t.equal(eps.get('a-xyz', 'ns')!.endpoints[0]!.addresses[0], '10.244.1.2');
  t.same(cidrs.get('kubernetes')!.spec!.cidrs, ['10.96.0.0/16']);

  api.create('endpointslices', { metadata: { name: 'b-1', namespace: 'other' }, addressType: 'IPv4', endpoints: [] });
  api.create('servicecidrs', { metadata: { name: 'extra' }, spec: { cidrs: ['10.97.0.0/16'] } });
  api.delete('endpointslices', 'ns', 'a-xyz');
  await waitFor(() => re.events.length === 3 && rc.events.length === 2 && rn.events.length === 2, 'events');
  t.same(re.events, ['add:ns/a-xyz', 'add:other/b-1', 'delete:ns/a-xyz']);
  t.same(rn.events, ['add:ns/a-xyz', 'delete:ns/a-xyz'], 'namespaced path only sees its namespace');
  t.same(rc.events, ['add:kubernetes', 'add:extra']);
});

t.test('closeWatches(): the informer re-watches from its last resourceVersion', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('a'));
  const inf = serviceInformer(api, NOT_HEADLESS);
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  api.create('services', svc('b'));
  await waitFor(() => r.events.length === 2, 'b');
  const rvBefore = api.resourceVersion;

  const seq = api.count();
  t.equal(api.closeWatches(), 1);
  const rewatch = await api.waitForRequest((x) => x.verb === 'watch', 10_000, seq + 1);
  t.equal(rewatch.resourceVersion, rvBefore, 're-watch from the last RV, no re-list');
  t.equal(rewatch.labelSelector, NOT_HEADLESS);
  await api.waitForWatches(1);
  t.equal(api.count('services', 'list'), 1);
  t.equal(r.connects, 2, "'connect' emitted again");

  api.create('services', svc('c'));
  api.delete('services', 'ns', 'a');
  await waitFor(() => r.events.length === 4, 'later events');
  t.same(r.events, ['add:ns/a', 'add:ns/b', 'add:ns/c', 'delete:ns/a']);
  t.same(names(inf), ['b', 'c']);
  t.equal(r.errors.length, 0);
});

t.test('410 Expired after compaction: the informer re-lists and converges', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('keep'));
  api.create('services', svc('gone'));
  const inf = serviceInformer(api);
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  const staleRV = rvOf(inf);

  // Outage: watches get 503, the informer stops (after 'error'), meanwhile things change and get compacted.
  api.failAll(503, { verb: 'watch' });
  api.closeWatches();
  await waitFor(() => r.errors.length === 1, '503 error');
  t.equal(r.errors[0].statusCode, 503);
  api.delete('services', 'ns', 'gone');
  api.create('services', svc('new'));
  api.compact();
  api.failAll(null);

  // Caller restarts: watch from the stale RV → ERROR 410 event → informer re-lists by itself.
  const seq = api.count();
  r.events.length = 0;
  await inf.start();
  const w = await api.waitForRequest((x) => x.verb === 'watch', 10_000, seq + 1);
  t.equal(w.resourceVersion, staleRV);
  await api.waitForRequest((x) => x.verb === 'list', 10_000, seq + 1);
  await api.waitForWatches(1);
  await waitFor(() => r.events.length === 2, 'relist diff');
  t.same(r.events.sort(), ['add:ns/new', 'delete:ns/gone']);
  t.same(names(inf), ['keep', 'new']);
  t.equal(rvOf(inf), api.resourceVersion);
  t.equal(r.errors.length, 1, 'the 410 itself is not reported as an error');

  // and the raw protocol: ERROR event with a Status 410 Expired, then end of stream
  const raw = await rawWatch(api, `/api/v1/services?watch=true&resourceVersion=${staleRV}`);
  await raw.ended;
  t.equal(raw.status, 200);
  t.equal(raw.events.length, 1);
  t.match(raw.events[0], { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired' } });
});

t.test('HTTP 410 on the watch request also makes the informer re-list by itself', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('a'));
  const inf = serviceInformer(api);
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  api.failNext(1, 410, { verb: 'watch' });
  api.closeWatches();
  await waitFor(() => api.count('services', 'list') === 2, 're-list');
  await api.waitForWatches(1);
  t.equal(r.errors.length, 0);
  t.same(names(inf), ['a']);
});

t.test('503 answers: the informer emits error and stays stopped until start()', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('a'));
  const inf = serviceInformer(api);
  const r = record(inf);
  autoStop(t, inf);

  // API server answering 503 at start: the list fails → 'error' with an ApiException (code 503)
  api.failNext(1, 503);
  await inf.start();
  await waitFor(() => r.errors.length === 1, 'list error');
  t.equal(r.errors[0].code, 503, 'ApiException.code');
  t.match(r.errors[0].body, /ServiceUnavailable/, 'ApiException.body is the raw Status JSON');
  t.equal(api.requestLog.at(-1)!.injected, true);
  t.equal(names(inf).length, 0);
  await sleep(100);
  t.equal(api.count('services'), 1, 'no retry by itself');

  await inf.start();
  await api.waitForWatches(1);
  t.same(names(inf), ['a']);

  // 503 on a re-watch → 'error' with Error{statusCode: 503}; no re-watch by itself
  api.failNext(1, 503, { verb: 'watch' });
  api.closeWatches();
  await waitFor(() => r.errors.length === 2, 'watch error');
  t.equal(r.errors[1].statusCode, 503);
  t.equal(r.errors[1].message, 'Service Unavailable');
  const n = api.count('services', 'watch');
  await sleep(200);
  t.equal(api.count('services', 'watch'), n, 'stays stopped');
  t.equal(api.watchCount(), 0);

  api.create('services', svc('b')); // while stopped
  await inf.start(); // resumes from the retained RV, no list
  await api.waitForWatches(1);
  await waitFor(() => names(inf).length === 2, 'b');
  t.equal(api.count('services', 'list'), 2);
});

t.test('connection reset and connection refused (setDown)', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.create('services', svc('a'));
  const inf = serviceInformer(api);
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  const url = api.url;

  await api.setDown(true); // resets the open watch
  await waitFor(() => r.errors.length === 1, 'reset error');
  t.equal(r.errors[0].code, 'ERR_STREAM_PREMATURE_CLOSE');
  api.create('services', svc('b')); // while down

  await inf.start();
  await waitFor(() => r.errors.length === 2, 'refused');
  t.equal(r.errors[1].code, 'ECONNREFUSED');
  t.equal(r.errors[1].type, 'system');

  // a list while down: rejects with a FetchError too
  await t.rejects(kubeConfigFor(api).makeApiClient(k8s.CoreV1Api).listServiceForAllNamespaces({}), { code: 'ECONNREFUSED' });

  await api.setDown(false);
  t.equal(api.url, url, 'same port after coming back');
  await inf.start();
  await api.waitForWatches(1);
  await waitFor(() => names(inf).length === 2, 'b replayed from history');
  t.equal(api.count('services', 'list'), 1, 'no re-list needed');

  // abrupt closeWatches() behaves like a reset
  api.closeWatches({ abrupt: true });
  await waitFor(() => r.errors.length === 3, 'abrupt');
  t.equal(r.errors[2].code, 'ERR_STREAM_PREMATURE_CLOSE');
});

t.test('bookmarks are sent when asked for and keep the informer resourceVersion fresh', { timeout: 15000 }, async (t) => {
  const api = await startServer(t, { bookmarkIntervalMs: 50 });
  api.create('services', svc('a'));
  // client-node never sets allowWatchBookmarks; it can be put into the path.
  const inf = serviceInformer(api, undefined, '?allowWatchBookmarks=true');
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();
  await api.waitForWatches(1);
  t.equal(api.requestLog.find((x) => x.verb === 'watch')!.query['allowWatchBookmarks'], 'true');

  // changes to another resource move the global RV; bookmarks carry it to the informer
  api.create('nodes', { metadata: { name: 'n1' } });
  api.create('nodes', { metadata: { name: 'n2' } });
  await waitFor(() => rvOf(inf) === api.resourceVersion, 'bookmark RV');
  await sleep(150);
  t.same(r.events, ['add:ns/a'], 'bookmarks produce no handler calls');
  api.create('services', svc('b'));
  await waitFor(() => r.events.length === 2, 'b');
  t.same(names(inf), ['a', 'b']);
  t.equal(r.errors.length, 0);

  // raw: BOOKMARK objects carry only kind/apiVersion/metadata.resourceVersion
  const raw = await rawWatch(api, `/api/v1/services?watch=true&allowWatchBookmarks=true&resourceVersion=${api.resourceVersion}`);
  await waitFor(() => raw.events.length >= 2, 'raw bookmarks');
  raw.close();
  t.same(raw.events[0], { type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: api.resourceVersion } } });

  // not asked → none (unless alwaysSendBookmarks)
  const quiet = await rawWatch(api, `/api/v1/services?watch=true&resourceVersion=${api.resourceVersion}`);
  await sleep(200);
  quiet.close();
  t.equal(quiet.events.length, 0);
});

// ---------------------------------------------------------------------------
// raw protocol

t.test('raw protocol: list shape, watch replay, initial events, timeoutSeconds, 404, discovery', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  const rv0 = api.resourceVersion;
  api.create('services', svc('a'));
  api.create('endpointslices', { metadata: { name: 's', namespace: 'ns' }, addressType: 'IPv4', endpoints: [] });
  api.update('services', svc('a', { v: '2' }));
  api.delete('services', 'ns', 'a');
  api.create('services', svc('b'));

  const list = await get(api, '/api/v1/namespaces/ns/services');
  t.equal(list.status, 200);
  t.same(Object.keys(list.body).sort(), ['apiVersion', 'items', 'kind', 'metadata']);
  t.match(list.body, { kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: api.resourceVersion } });
  t.equal(list.body.items.length, 1);
  t.equal(list.body.items[0].kind, undefined, 'list items carry no kind, like the real server');
  t.match((await get(api, '/apis/discovery.k8s.io/v1/endpointslices')).body, { kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1' });
  t.match((await get(api, '/apis/networking.k8s.io/v1/servicecidrs')).body, { kind: 'ServiceCIDRList', apiVersion: 'networking.k8s.io/v1' });
  t.match((await get(api, '/api/v1/nodes')).body, { kind: 'NodeList' });

  // replay from an old RV: every services event after it, in order; then live
  const w = await rawWatch(api, `/api/v1/services?watch=1&resourceVersion=${rv0}`);
  await waitFor(() => w.events.length === 4, 'replay');
  t.same(
    w.events.map((e) => `${e.type}:${e.object.metadata.name}:${e.object.metadata.resourceVersion}`),
    [`ADDED:a:${+rv0 + 1}`, `MODIFIED:a:${+rv0 + 3}`, `DELETED:a:${+rv0 + 4}`, `ADDED:b:${+rv0 + 5}`],
  );
  t.equal(w.events[0]!.object.kind, 'Service');
  api.create('services', svc('c'));
  await waitFor(() => w.events.length === 5, 'live');
  w.close();

  // RV unset: synthetic ADDED for the current state, then live
  const w2 = await rawWatch(api, '/api/v1/services?watch=true&timeoutSeconds=1');
  await waitFor(() => w2.events.length === 2, 'initial');
  t.same(
    w2.events.map((e) => `${e.type}:${e.object.metadata.name}`),
    ['ADDED:b', 'ADDED:c'],
  );
  const t0 = Date.now();
  await w2.ended;
  t.ok(Date.now() - t0 < 2500, 'timeoutSeconds ends the stream');

  // get by name + watch by name
  t.equal((await get(api, '/api/v1/namespaces/ns/services/b')).body.metadata.name, 'b');
  const nf = await get(api, '/api/v1/namespaces/ns/services/zz');
  t.match(nf, { status: 404, body: { kind: 'Status', code: 404, reason: 'NotFound' } });

  for (const p of ['/api/v1/pods', '/apis/apps/v1/deployments', '/foo', '/api/v1/namespaces/ns/nodes']) {
    const res = await get(api, p);
    t.equal(res.status, 404, p);
    t.match(res.body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound' }, p);
  }
  t.match((await get(api, '/version')).body, { major: '1', gitVersion: /^v1\./ });
  t.match((await get(api, '/api')).body, { kind: 'APIVersions', versions: ['v1'] });
  const groups = (await get(api, '/apis')).body.groups.map((g: AnyErr) => g.name);
  t.same(groups.sort(), ['discovery.k8s.io', 'networking.k8s.io']);
  t.match((await get(api, '/api/v1')).body, { kind: 'APIResourceList', groupVersion: 'v1' });
  t.equal((await get(api, '/healthz')).body, 'ok');
  t.equal(api.count(undefined, 'discovery'), 4);
  t.equal(api.count(undefined, 'health'), 1);
});

t.test('TCP and a unix socket at the same time; many concurrent watches; close() ends streams', { timeout: 15000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-apiserver-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'api.sock');
  const api = await FakeApiServer.start({ socketPath });
  t.teardown(() => api.close());
  t.equal(api.socketPath, socketPath);

  api.create('services', svc('a'));
  const overUnix = await get({ socketPath }, '/api/v1/services');
  t.equal(overUnix.body.items.length, 1);
  t.equal(api.requestLog.at(-1)!.via, 'unix');

  const inf = serviceInformer(api); // over TCP
  const r = record(inf);
  autoStop(t, inf);
  await inf.start();

  const rv = api.resourceVersion;
  const watches = await Promise.all(
    Array.from({ length: 40 }, (_, i) => rawWatch(i % 2 ? { socketPath } : api, `/api/v1/services?watch=true&resourceVersion=${rv}`)),
  );
  await api.waitForWatches(41, 'services');
  api.create('services', svc('b'));
  await waitFor(() => watches.every((w) => w.events.length === 1) && r.events.length === 2, 'fan-out');
  t.ok(watches.every((w) => w.events[0]!.type === 'ADDED' && w.events[0]!.object.metadata.name === 'b'));

  await inf.stop();
  await api.close();
  await Promise.all(watches.map((w) => w.ended));
  t.equal(api.watchCount(), 0);
  await t.rejects(get({ socketPath }, '/api/v1/services'));
  await t.rejects(get(api, '/api/v1/services'));
});

t.test('failNext filters and counters', { timeout: 15000 }, async (t) => {
  const api = await startServer(t);
  api.failNext(2, 500, { resource: 'nodes' });
  t.equal((await get(api, '/api/v1/services')).status, 200);
  const f = await get(api, '/api/v1/nodes');
  t.match(f, { status: 500, body: { kind: 'Status', code: 500, reason: 'InternalError' } });
  t.equal((await get(api, '/api/v1/nodes')).status, 500);
  t.equal((await get(api, '/api/v1/nodes')).status, 200);
  api.failAll(503);
  t.equal((await get(api, '/api/v1/services')).status, 503);
  t.equal((await get(api, '/healthz')).status, 200, 'health endpoints never fail');
  api.failAll(null);
  t.equal((await get(api, '/api/v1/services')).status, 200);
  t.equal(api.count('nodes', 'list'), 3);
  t.equal(api.count('services'), 3);
  t.equal(api.count(undefined, 'list'), 6);
  api.resetRequestLog();
  t.equal(api.requestLog.length, 0);
  t.equal(api.count('services'), 0);
});
