import t from 'tap';
import { ProxyHealth, TO_BE_DELETED_TAINT, goTimeJSON, healthResponse, isNodeEligible, nodeHealthInfoFromObject } from '../../src/agent/server/health.js';

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 120);

function clock(start = T0): { now: () => number; step: (ms: number) => void } {
  let t = start;
  return { now: () => t, step: (ms) => (t += ms) };
}

t.test('healthy at start, with nothing synced and nothing queued', async (t) => {
  const c = clock();
  const h = new ProxyHealth({ healthTimeoutMs: 10_000, now: c.now });
  const s = h.health();
  t.equal(s.healthy, true);
  t.equal(s.nodeEligible, true, 'eligible until a node update says otherwise');
  t.equal(s.lastUpdated, undefined);
  t.equal(s.currentTime, T0);
  t.same(s.families, {});
});

t.test('as upstream, a family is only judged once it has reported updated()', async (t) => {
  const c = clock();
  const h = new ProxyHealth({ healthTimeoutMs: 10_000, now: c.now });
  h.queuedUpdate('IPv4');
  c.step(60_000);
  t.equal(h.isHealthy(), true, 'queued before the sync loop started: still "starting up"');
  h.updated('IPv4'); // the sync loop starts (upstream calls Updated here)
  h.queuedUpdate('IPv4');
  c.step(60_000);
  t.equal(h.isHealthy(), false, 'a first sync that never succeeds turns the proxy unhealthy');
});

t.test('unhealthy when a queued update is older than the timeout; healthy again after updated()', async (t) => {
  const c = clock();
  const h = ProxyHealth.forSyncPeriod(5_000, c.now);
  t.equal(h.healthTimeoutMs, 10_000, 'timeout is 2 × syncPeriod');
  h.updated();
  c.step(25_000);
  t.equal(h.isHealthy(), true, 'no queued update: healthy however long ago the last sync was');

  h.queuedUpdate();
  c.step(9_999);
  t.equal(h.isHealthy(), true, 'queued but not late yet');
  h.queuedUpdate(); // a later change does not move the oldest pending time
  c.step(1);
  t.equal(h.isHealthy(), false, 'exactly the timeout is late (upstream: healthy only while < timeout)');
  const s = h.health();
  t.equal(s.lastUpdated, T0);
  t.same(s.families, { IPv4: { lastUpdated: T0, healthy: false } });

  h.updated();
  t.equal(h.isHealthy(), true);
  t.same(h.health().families, { IPv4: { lastUpdated: T0 + 35_000, healthy: true } });
});

t.test('per-family: any late family makes the proxy unhealthy until that family syncs', async (t) => {
  const c = clock();
  const h = new ProxyHealth({ healthTimeoutMs: 10_000, now: c.now });
  h.updated('IPv4');
  h.updated('IPv6');
  t.equal(h.isHealthy(), true);

  h.queuedUpdate('IPv6');
  c.step(25_000);
  t.equal(h.isHealthy(), false);
  h.updated('IPv4');
  t.equal(h.isHealthy(), false, 'syncing IPv4 does not help a late IPv6');
  t.same(Object.keys(h.health().families), ['IPv4', 'IPv6']);
  t.equal(h.health().families.IPv4?.healthy, true);
  t.equal(h.health().families.IPv6?.healthy, false);
  t.equal(h.health().lastUpdated, T0 + 25_000, 'lastUpdated is the most recent over families');
  h.updated('IPv6');
  t.equal(h.isHealthy(), true);

  h.queuedUpdate('IPv4');
  h.queuedUpdate('IPv6');
  c.step(25_000);
  h.updated('IPv4');
  t.equal(h.isHealthy(), false, 'both late: not healthy until both synced');
  h.updated('IPv6');
  t.equal(h.isHealthy(), true);
});

t.test('node eligibility: deletion timestamp or the autoscaler taint', async (t) => {
  const h = new ProxyHealth({ healthTimeoutMs: 10_000 });
  h.syncNode({ taints: [{ key: 'other' }] });
  t.equal(h.nodeEligible, true);
  h.syncNode({ taints: [{ key: TO_BE_DELETED_TAINT }] });
  t.equal(h.nodeEligible, false);
  h.syncNode({ taints: [{ key: 'other' }] });
  t.equal(h.nodeEligible, true);
  h.syncNode({ deletionTimestamp: '2024-01-01T00:00:00Z' });
  t.equal(h.nodeEligible, false);
  h.syncNode({});
  t.equal(h.nodeEligible, true);
  h.syncNode(null);
  t.equal(h.nodeEligible, false, 'the Node object is gone');
  t.equal(h.isHealthy(), true, 'eligibility is not proxy health');

  t.equal(isNodeEligible({ deletionTimestamp: null, taints: null }), true);
  t.same(nodeHealthInfoFromObject({ metadata: { name: 'n', deletionTimestamp: '2024-01-01T00:00:00Z' }, spec: { taints: [{ key: TO_BE_DELETED_TAINT, effect: 'NoSchedule' }, { bad: 1 }] } }), {
    deletionTimestamp: '2024-01-01T00:00:00Z',
    taints: [{ key: TO_BE_DELETED_TAINT }],
  });
  t.equal(isNodeEligible(nodeHealthInfoFromObject({ metadata: { name: 'n' } })), true);
});

t.test('Go time JSON form', async (t) => {
  t.equal(goTimeJSON(T0), '2024-01-02T03:04:05.12Z', 'trailing zeros of the fraction dropped');
  t.equal(goTimeJSON(Date.UTC(2024, 0, 2, 3, 4, 5)), '2024-01-02T03:04:05Z');
  t.equal(goTimeJSON(Date.UTC(2024, 0, 2, 3, 4, 5, 7)), '2024-01-02T03:04:05.007Z');
  t.equal(goTimeJSON(undefined), '0001-01-01T00:00:00Z');
});

t.test('response bodies: /healthz adds node eligibility, /livez does not', async (t) => {
  const c = clock();
  const h = new ProxyHealth({ healthTimeoutMs: 10_000, now: c.now });
  h.updated('IPv4');
  c.step(1_000);

  let r = healthResponse(h, 'healthz');
  t.equal(r.status, 200);
  t.equal(r.body, `{"lastUpdated":"${goTimeJSON(T0 + 1_000)}","currentTime":"${goTimeJSON(T0 + 1_000)}","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"${goTimeJSON(T0)}","healthy":true}}}`, 'healthy: lastUpdated is the current time, as upstream');
  r = healthResponse(h, 'livez');
  t.equal(r.status, 200);
  t.notOk('nodeEligible' in JSON.parse(r.body));

  h.syncNode({ deletionTimestamp: '2024-01-01T00:00:00Z' });
  r = healthResponse(h, 'healthz');
  t.equal(r.status, 503, 'node being deleted: /healthz unhealthy');
  t.match(JSON.parse(r.body), { nodeEligible: false, healthy: true, lastUpdated: goTimeJSON(T0) });
  t.equal(healthResponse(h, 'livez').status, 200, '/livez ignores the node');

  h.syncNode({});
  h.queuedUpdate('IPv4');
  c.step(10_000);
  r = healthResponse(h, 'livez');
  t.equal(r.status, 503);
  t.same(JSON.parse(r.body), { lastUpdated: goTimeJSON(T0), currentTime: goTimeJSON(T0 + 11_000), healthy: false, status: { IPv4: { lastUpdated: goTimeJSON(T0), healthy: false } } });
  t.equal(healthResponse(h, 'healthz').status, 503);

  const fresh = new ProxyHealth({ healthTimeoutMs: 1, now: c.now });
  t.notOk('status' in JSON.parse(healthResponse(fresh, 'healthz').body), 'no families yet: no status map (omitempty)');
});

t.test('a non-positive timeout is refused', async (t) => {
  t.throws(() => new ProxyHealth({ healthTimeoutMs: 0 }), RangeError);
});
