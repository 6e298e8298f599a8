import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { SyncRunner } from '../../src/agent/sync/runner.js';

/** Waits until pred() holds (generous deadline: CI runs suites in parallel on 2 cores). */
async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(5);
  }
}

t.test('a burst of triggers inside minSyncPeriod coalesces into one sync', async (t) => {
  const runs: boolean[] = [];
  const r = new SyncRunner({ minSyncPeriodMs: 500, syncPeriodMs: 60_000, run: async ({ full }) => void runs.push(full) });
  t.teardown(() => r.stop());
  r.triggerFull();
  await until(() => runs.length === 1);
  t.same(runs, [true], 'the first sync is full and immediate');
  const burstStart = Date.now();
  for (let i = 0; i < 500; i++) r.trigger();
  await sleep(100);
  if (Date.now() - burstStart < 450) t.equal(runs.length, 1, 'no sync before minSyncPeriod has passed');
  await until(() => runs.length === 2);
  await sleep(600);
  t.same(runs, [true, false], '500 triggers made one partial sync');
});

t.test('a failed sync retries with backoff and the retry is full', async (t) => {
  const runs: boolean[] = [];
  const errors: number[] = [];
  let fail = 2;
  const r = new SyncRunner({
    minSyncPeriodMs: 0,
    syncPeriodMs: 60_000,
    initialBackoffMs: 100,
    maxBackoffMs: 1000,
    run: async ({ full }) => {
      runs.push(full);
      if (fail-- > 0) throw new Error('iptables-restore: line 3 failed');
    },
    onError: (_e, retry) => void errors.push(retry),
  });
  t.teardown(() => r.stop());
  r.triggerFull();
  await until(() => runs.length === 1);
  const failedAt = Date.now();
  r.trigger(); // a change arriving while backing off must not bypass the backoff
  await sleep(20);
  if (Date.now() - failedAt < 90) t.equal(runs.length, 1, 'no retry before the backoff');
  await until(() => runs.length === 3);
  t.same(runs, [true, true, true], 'retried twice, each retry full');
  t.same(errors, [100, 200], 'backoff doubles');
  t.equal(r.failures, 2);
  r.trigger();
  await until(() => runs.length === 4);
  t.same(runs, [true, true, true, false], 'after success, syncs are partial again');
});

t.test('syncPeriod forces a periodic sync, full only once fullSyncPeriod has passed', async (t) => {
  // Judged against when each sync actually ran, so a loaded machine that delays the timers cannot fail it.
  const runs: { full: boolean; at: number }[] = [];
  const r = new SyncRunner({ minSyncPeriodMs: 0, syncPeriodMs: 40, fullSyncPeriodMs: 200, run: async ({ full }) => void runs.push({ full, at: Date.now() }) });
  t.teardown(() => r.stop());
  r.triggerFull();
  await until(() => runs.length >= 12);
  t.equal(runs[0]!.full, true, 'the first sync is full');
  let lastFull = runs[0]!.at;
  const wrong: string[] = [];
  for (const [i, x] of runs.entries()) {
    if (i === 0) continue;
    const since = x.at - lastFull;
    // The runner reads the clock just before calling run: allow a few ms either way.
    if (x.full ? since < 195 : since > 205) wrong.push(`sync ${i} ${x.full ? 'full' : 'partial'} ${since} ms after the last full one`);
    if (x.full) lastFull = x.at;
  }
  t.same(wrong, [], 'a sync is full exactly when fullSyncPeriod has passed since the last full one');
  t.ok(runs.slice(1).some((x) => x.full), 'a later periodic sync is full again');
  t.ok(runs.some((x) => !x.full), 'the periodic syncs in between are partial');
});

t.test('by default a periodic sync is partial (upstream full-syncs once an hour)', async (t) => {
  const runs: boolean[] = [];
  const r = new SyncRunner({ minSyncPeriodMs: 0, syncPeriodMs: 30, run: async ({ full }) => void runs.push(full) });
  t.teardown(() => r.stop());
  r.triggerFull();
  await until(() => runs.length >= 4);
  t.same(runs.slice(0, 4), [true, false, false, false]);
});

t.test('stop waits for the sync in flight', async (t) => {
  let finished = false;
  let started = false;
  const r = new SyncRunner({
    minSyncPeriodMs: 0,
    syncPeriodMs: 60_000,
    run: async () => {
      started = true;
      await sleep(50);
      finished = true;
    },
  });
  r.triggerFull();
  await until(() => started);
  await r.stop();
  t.ok(finished);
});
