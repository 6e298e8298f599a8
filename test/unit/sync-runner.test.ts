import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { SyncRunner } from '../../src/agent/sync/runner.js';

t.test('a burst of triggers inside minSyncPeriod coalesces into one sync', async (t) => {
  const runs: boolean[] = [];
  const r = new SyncRunner({ minSyncPeriodMs: 200, syncPeriodMs: 60_000, run: async ({ full }) => void runs.push(full) });
  r.triggerFull();
  await sleep(20);
  t.same(runs, [true], 'the first sync is full and immediate');
  for (let i = 0; i < 500; i++) r.trigger();
  await sleep(50);
  t.equal(runs.length, 1, 'no sync before minSyncPeriod has passed');
  await sleep(250);
  t.same(runs, [true, false], '500 triggers made one partial sync');
  await r.stop();
});

t.test('a failed sync retries with backoff and the retry is full', async (t) => {
  const runs: boolean[] = [];
  const errors: number[] = [];
  let fail = 2;
  const r = new SyncRunner({
    minSyncPeriodMs: 0,
    syncPeriodMs: 60_000,
    initialBackoffMs: 30,
    maxBackoffMs: 1000,
    run: async ({ full }) => {
      runs.push(full);
      if (fail-- > 0) throw new Error('iptables-restore: line 3 failed');
    },
    onError: (_e, retry) => void errors.push(retry),
  });
  r.triggerFull();
  await sleep(20);
  t.same(runs, [true]);
  r.trigger(); // a change arriving while backing off must not bypass the backoff
  await sleep(5);
  t.equal(runs.length, 1);
  await sleep(200);
  t.same(runs, [true, true, true], 'retried twice, each retry full');
  t.same(errors, [30, 60], 'backoff doubles');
  t.equal(r.failures, 2);
  r.trigger();
  await sleep(20);
  t.same(runs, [true, true, true, false], 'after success, syncs are partial again');
  await r.stop();
});

t.test('syncPeriod forces a periodic full sync', async (t) => {
  const runs: boolean[] = [];
  const r = new SyncRunner({ minSyncPeriodMs: 0, syncPeriodMs: 60, run: async ({ full }) => void runs.push(full) });
  r.triggerFull();
  await sleep(200);
  t.ok(runs.length >= 3, `ran ${runs.length} times`);
  t.ok(runs.every((f) => f), 'periodic syncs are full');
  await r.stop();
});

t.test('stop waits for the sync in flight', async (t) => {
  let finished = false;
  const r = new SyncRunner({ minSyncPeriodMs: 0, syncPeriodMs: 60_000, run: async () => {
    await sleep(50);
    finished = true;
  } });
  r.triggerFull();
  await sleep(5);
  await r.stop();
  t.ok(finished);
});
