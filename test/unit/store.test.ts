import t from 'tap';
import { ClusterStore } from '../../src/agent/model/store.js';
import { service, slice } from '../helpers/model.js';

t.test('changes name only the service ports touched, and commit clears them', async (t) => {
  const store = new ClusterStore('node-1');
  let notified = 0;
  store.onChange(() => notified++);
  store.upsertService(service({ name: 'a' }));
  store.upsertService(service({ name: 'b', clusterIPs: ['10.96.0.11'] }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  t.equal(notified, 3);
  const first = store.snapshot();
  t.same([...first.changes.servicePorts].sort(), ['ns/a:http/TCP', 'ns/b:http/TCP']);
  t.equal(first.snapshot.servicePorts.size, 2);
  store.commit(first.changes);
  t.notOk(store.hasPendingChanges);

  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }]));
  const second = store.snapshot();
  t.same([...second.changes.servicePorts], ['ns/a:http/TCP']);
  t.equal(second.snapshot.servicePorts.get('ns/a:http/TCP')!.endpoints.length, 2);
  t.equal(first.snapshot.servicePorts.get('ns/a:http/TCP')!.endpoints.length, 1, 'earlier snapshots are not mutated');
  store.commit(second.changes);

  store.deleteService('ns', 'b');
  const third = store.snapshot();
  t.same([...third.changes.servicePorts], ['ns/b:http/TCP']);
  t.notOk(third.snapshot.servicePorts.has('ns/b:http/TCP'));
});

t.test('a change arriving during a sync stays pending after commit', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  const s1 = store.snapshot();
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  store.commit(s1.changes);
  t.ok(store.hasPendingChanges);
  const s2 = store.snapshot();
  t.same([...s2.changes.servicePorts], ['ns/a:http/TCP']);
  t.equal(s2.snapshot.servicePorts.get('ns/a:http/TCP')!.endpoints.length, 1);
});

t.test('re-applying an identical object is not a change', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.commit(store.snapshot().changes);
  store.upsertService(service({ name: 'a' }));
  t.same([...store.snapshot().changes.servicePorts], []);
});

t.test('a slice moved to another service leaves the old one', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertService(service({ name: 'b', clusterIPs: ['10.96.0.11'] }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }], { name: 'shared' }));
  store.upsertSlice(slice('b', [{ ip: '10.244.1.2' }], { name: 'shared' }));
  const { snapshot } = store.snapshot();
  t.equal(snapshot.servicePorts.get('ns/a:http/TCP')!.endpoints.length, 0);
  t.equal(snapshot.servicePorts.get('ns/b:http/TCP')!.endpoints.length, 1);
  store.deleteSlice('ns', 'shared');
  t.equal(store.snapshot().snapshot.servicePorts.get('ns/b:http/TCP')!.endpoints.length, 0);
});

t.test('ExternalName, headless and IPv6-only services have no IPv4 service ports', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'en', type: 'ExternalName', clusterIPs: [] }));
  store.upsertService(service({ name: 'hl', headless: true, clusterIPs: [] }));
  store.upsertService(service({ name: 'v6', clusterIPs: ['fd00::10'] }));
  t.equal(store.snapshot().snapshot.servicePorts.size, 0);
});

t.test('trigger times count only for the store of the slice\'s own family', async (t) => {
  const v4 = new ClusterStore('node-1', 'IPv4');
  const v6 = new ClusterStore('node-1', 'IPv6');
  for (const s of [v4, v6]) {
    s.upsertService(service({ name: 'a', clusterIPs: ['10.96.0.10', 'fd00::10'] }));
    s.upsertSlice(slice('a', [{ ip: '10.244.1.2' }], { triggerTime: 1000 }));
  }
  t.same(v4.snapshot().changes.triggerTimes, [1000]);
  t.same(v6.snapshot().changes.triggerTimes, [], 'an IPv4 slice is no IPv6 latency');
});

t.test('the snapshot carries the total endpoint count, kept up to date incrementally', async (t) => {
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertService(service({ name: 'b', clusterIPs: ['10.96.0.11'] }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }]));
  store.upsertSlice(slice('b', [{ ip: '10.244.1.4' }]));
  t.equal(store.snapshot().snapshot.endpointCount, 3);
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  t.equal(store.snapshot().snapshot.endpointCount, 2);
  store.deleteService('ns', 'b');
  t.equal(store.snapshot().snapshot.endpointCount, 1);
});

t.test('a ServicePort is never changed once handed out: a change makes a new object, an unchanged port keeps its own', async (t) => {
  // The iptables backend relies on this: it keeps the ServicePort each port was rendered from, not its rules.
  const store = new ClusterStore('node-1');
  store.upsertService(service({ name: 'a' }));
  store.upsertService(service({ name: 'b', clusterIPs: ['10.96.0.11'] }));
  store.upsertSlice(slice('a', [{ ip: '10.244.1.2' }]));
  store.upsertSlice(slice('b', [{ ip: '10.244.1.9' }]));
  const first = store.snapshot();
  store.commit(first.changes);
  const a1 = first.snapshot.servicePorts.get('ns/a:http/TCP')!;
  const b1 = first.snapshot.servicePorts.get('ns/b:http/TCP')!;
  const a1Before = JSON.stringify(a1);

  store.upsertSlice(slice('a', [{ ip: '10.244.1.3' }]));
  const second = store.snapshot();
  t.not(second.snapshot.servicePorts.get('ns/a:http/TCP'), a1, 'a changed port is a new object');
  t.equal(JSON.stringify(a1), a1Before, 'and the old one is untouched');
  t.equal(second.snapshot.servicePorts.get('ns/b:http/TCP'), b1, 'an unchanged port is the same object');
});
