/**
 * Watched with trimCached, through the unmodified client-node informer and
 * the fake API server: the handlers see whole objects, the informer's cache
 * keeps only kind and identity, and the informer's own bookkeeping on that
 * cache (a re-list after a 410: what vanished is deleted, what did not
 * change is not reported again) still works.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { FakeApiServer, kubeConfigFor } from '../helpers/fake-apiserver.js';
import { apiSlice } from '../helpers/api-objects.js';
import { memoryLogger } from '../../src/agent/log.js';
import { trimToIdentity, Watched } from '../../src/agent/sources/kubernetes/watched.js';
import { until } from '../helpers/until.js';

t.test('trimToIdentity keeps kind, name, namespace, resourceVersion and uid', async (t) => {
  const o = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'demo', resourceVersion: '7', uid: 'u-1', labels: { a: 'b' }, annotations: { x: 'y' }, managedFields: [{ manager: 'kubectl' }], generation: undefined },
    spec: { clusterIP: '10.96.0.10' },
    status: {},
  };
  trimToIdentity(o);
  t.same(o, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo', resourceVersion: '7', uid: 'u-1' }, spec: undefined, status: undefined });
  t.equal(o.spec, undefined, 'the spec is dropped');
  t.same(Object.keys(o.metadata), ['name', 'namespace', 'resourceVersion', 'uid'], 'metadata holds nothing else');
});

t.test('the informer cache is trimmed; handlers see whole objects; a re-list after a 410 still finds deletions', async (t) => {
  const api = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
  t.teardown(() => api.close());
  api.create('endpointslices', apiSlice('web', ['10.244.1.2']));
  api.create('endpointslices', apiSlice('db', ['10.244.1.9']));
  const kc = kubeConfigFor(api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const upserts: string[] = [];
  const deletes: string[] = [];
  const w = new Watched<V1EndpointSlice>({
    kc,
    resource: 'endpointslices',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    list: () => discovery.listEndpointSliceForAllNamespaces(),
    log: memoryLogger(0),
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    trimCached: true,
    onUpsert: (s) => void upserts.push(`${s.metadata!.name}=${(s.endpoints ?? []).map((e) => e.addresses.join()).join()}`),
    onDelete: (s) => void deletes.push(`${s.metadata!.namespace}/${s.metadata!.name}`),
  });
  t.teardown(() => w.stop());
  w.start();
  await w.synced;
  t.same(upserts.sort(), ['db-abcde=10.244.1.9', 'web-abcde=10.244.1.2'], 'the handler saw the listed slices whole');
  const cached = w.cached();
  t.equal(cached.length, 2);
  for (const c of cached) {
    t.same(Object.entries(c).filter(([k, v]) => !['apiVersion', 'kind', 'metadata'].includes(k) && v !== undefined), [], `${c.metadata?.name}: nothing but kind and metadata`);
    t.equal(c.endpoints, undefined, 'no endpoints kept');
    t.ok(c.metadata?.resourceVersion, 'the resourceVersion is kept');
    t.same(Object.keys(c.metadata!).filter((k) => !['name', 'namespace', 'resourceVersion', 'uid'].includes(k)), [], 'no other metadata');
  }

  api.update('endpointslices', apiSlice('web', ['10.244.1.3']));
  await until(t, () => upserts.includes('web-abcde=10.244.1.3'), 'the watched update, whole');
  t.equal(w.cached().find((c) => c.metadata?.name === 'web-abcde')!.endpoints, undefined, 'and trimmed once handled');

  // A 410: history compacted while db is deleted; the informer re-lists and compares with its (trimmed) cache.
  upserts.length = 0;
  api.compact();
  api.delete('endpointslices', 'demo', 'db-abcde');
  api.closeWatches();
  await until(t, () => deletes.length > 0, 'the deletion found by the re-list');
  t.same(deletes, ['demo/db-abcde'], 'the vanished slice is deleted, by namespace and name');
  await sleep(300);
  t.same(upserts, [], 'the unchanged slice is not reported again: its resourceVersion was kept');
  t.same(w.cached().map((c) => c.metadata?.name), ['web-abcde']);
});
