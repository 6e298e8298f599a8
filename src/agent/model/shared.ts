/**
 * Shared parts of the model's endpoints. An EndpointSlice's endpoints are
 * most of the model (100,000 at 10,000 services x 10), and most of their
 * parts repeat: eight possible condition triples, usually no hints, a few
 * hundred node and zone names. The model is never mutated, so endpoints share
 * one frozen object per condition triple, one frozen "no hints", and one
 * string per node or zone name (strings from different API objects are
 * different copies otherwise). Used wherever endpoints are made: validation,
 * and the bench's synthetic cluster.
 */
import type { EndpointConditions, SliceEndpoint } from './types.js';

const CONDITIONS = new Map<number, EndpointConditions>();

export function sharedConditions(ready: boolean, serving: boolean, terminating: boolean): EndpointConditions {
  const k = (ready ? 1 : 0) | (serving ? 2 : 0) | (terminating ? 4 : 0);
  let c = CONDITIONS.get(k);
  if (!c) CONDITIONS.set(k, (c = Object.freeze({ ready, serving, terminating })));
  return c;
}

export const NO_HINTS: SliceEndpoint['hints'] = Object.freeze({
  forZones: Object.freeze([]) as unknown as string[],
  forNodes: Object.freeze([]) as unknown as string[],
});

const NAMES = new Map<string, string>();

/** One copy of each node or zone name; the table is emptied if it ever grows past any real cluster's count. */
export function sharedName(name: string): string {
  const had = NAMES.get(name);
  if (had !== undefined) return had;
  if (NAMES.size >= 200_000) NAMES.clear();
  NAMES.set(name, name);
  return name;
}
