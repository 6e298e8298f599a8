import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';

/** Waits until pred() holds, polling every 20 ms; after `ms` the test fails (and goes on). */
export async function until(t: Test, pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`);
      return;
    }
    await sleep(20);
  }
}
