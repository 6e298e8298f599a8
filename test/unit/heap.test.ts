/** collectGarbage: available without --expose-gc, and it does collect. */
import t from 'tap';
import { collectGarbage } from '../../src/agent/heap.js';

t.test('collectGarbage runs a full collection that frees what is no longer referenced', async (t) => {
  t.equal(collectGarbage(), true, 'a collector is available at run time');
  let garbage: string[][] | undefined = Array.from({ length: 200 }, (_, i) => Array.from({ length: 1000 }, (_, j) => `element ${i} ${j} ${'x'.repeat(64)}`));
  collectGarbage();
  const held = process.memoryUsage().heapUsed;
  t.equal(garbage.length, 200);
  garbage = undefined;
  t.equal(collectGarbage(), true);
  const after = process.memoryUsage().heapUsed;
  // 200,000 strings of about 100 bytes: at least 15 MB were held.
  t.ok(held - after > 15 * 2 ** 20, `heap ${Math.round(held / 2 ** 20)} MiB -> ${Math.round(after / 2 ** 20)} MiB`);
});
