/**
 * A full garbage collection on demand, at the two moments the agent knows it
 * has just dropped a lot: the initial lists have been turned into the model
 * (their JSON and deserialized copies are garbage), and a full sync has been
 * written (its rendered text and per-port objects are garbage). V8 collects
 * lazily and grows the heap meanwhile, so without this the process keeps the
 * high-water mark of those moments, and the next one stacks on top of it.
 * gc() is not exposed without --expose-gc; the flag can be set at run time
 * and the function taken from a fresh context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** Runs a full collection; false when this runtime offers none (nothing happens then). */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    gc = (globalThis as { gc?: () => void }).gc ?? null;
    if (gc === null) {
      try {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc') as () => void;
      } catch {
        gc = null;
      }
    }
  }
  if (gc === null) return false;
  gc();
  return true;
}
