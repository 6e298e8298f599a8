/**
 * The manifests source: a directory of YAML/JSON manifests, loaded at start
 * and watched; every change to the directory re-reads it and hands the
 * difference (added, changed, removed objects) to the store. The embedded
 * default that needs no cluster.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { Logger } from '../../log.js';
import type { ClusterSink } from '../../model/store.js';
import type { EndpointSlice, NodeInfo, Service } from '../../model/types.js';
import { loadManifests } from './load.js';
import type { ManifestProblem } from './load.js';

export interface ManifestsSourceOptions {
  dir: string;
  store: ClusterSink;
  log: Logger;
  /** Quiet time after a file event before re-reading, ms. */
  debounceMs?: number;
  /** Re-read the directory this often even without events (missed events, NFS), ms; 0 = never. */
  pollMs?: number;
  /** A new problem was found: kind of the object ('file' when the file itself is unreadable). */
  onInvalid?(kind: string): void;
}

const key = (o: { namespace: string; name: string }): string => `${o.namespace}/${o.name}`;

export class ManifestsSource {
  private services = new Map<string, string>();
  private slices = new Map<string, string>();
  private node: string | undefined;
  private problems = new Set<string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private again = false;

  constructor(private readonly opts: ManifestsSourceOptions) {}

  /** Loads the directory once. Resolves when the store holds its full contents. */
  async load(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.reload().finally(() => {
      this.loading = undefined;
    });
    await this.loading;
    if (this.again) {
      this.again = false;
      await this.load();
    }
  }

  /** Starts watching the directory for changes. */
  watch(): void {
    const debounce = this.opts.debounceMs ?? 100;
    this.watcher = watch(this.opts.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.load().catch((err: Error) => this.opts.log.error('reading manifests failed', { dir: this.opts.dir, err: err.message })), debounce);
    });
    this.watcher.on('error', (err) => this.opts.log.error('watching manifests failed', { dir: this.opts.dir, err: err.message }));
    const poll = this.opts.pollMs ?? 10_000;
    if (poll > 0) this.poller = setInterval(() => void this.load().catch(() => undefined), poll).unref();
  }

  stop(): void {
    this.watcher?.close();
    clearTimeout(this.timer);
    clearInterval(this.poller);
  }

  private async reload(): Promise<void> {
    const { store, log, dir } = this.opts;
    const set = await loadManifests(dir);
    this.report(set.problems);

    const nextServices = new Map<string, string>();
    const svcByKey = new Map<string, Service>();
    for (const s of set.services) {
      nextServices.set(key(s), JSON.stringify(s));
      svcByKey.set(key(s), s);
    }
    const nextSlices = new Map<string, string>();
    const sliceByKey = new Map<string, EndpointSlice>();
    for (const s of set.slices) {
      nextSlices.set(key(s), JSON.stringify(s));
      sliceByKey.set(key(s), s);
    }
    for (const [k, json] of nextServices) if (this.services.get(k) !== json) store.upsertService(svcByKey.get(k)!);
    for (const k of this.services.keys()) if (!nextServices.has(k)) store.deleteService(...split(k));
    for (const [k, json] of nextSlices) if (this.slices.get(k) !== json) store.upsertSlice(sliceByKey.get(k)!);
    for (const k of this.slices.keys()) if (!nextSlices.has(k)) store.deleteSlice(...split(k));
    const own: NodeInfo | undefined = set.nodes.find((n) => n.name === store.nodeName);
    const nodeJson = own ? JSON.stringify(own) : undefined;
    if (nodeJson !== this.node) store.setNode(own);
    this.services = nextServices;
    this.slices = nextSlices;
    this.node = nodeJson;
    log.info(4, 'manifests loaded', { dir, services: set.services.length, endpointSlices: set.slices.length, problems: set.problems.length });
  }

  /** Warns once per distinct problem, and again only if it reappears after being fixed. */
  private report(problems: ManifestProblem[]): void {
    const next = new Set<string>();
    for (const p of problems) {
      const id = `${p.file}|${p.object ?? ''}|${p.reason}`;
      next.add(id);
      if (this.problems.has(id)) continue;
      this.opts.log.warn('skipping invalid manifest object', { file: p.file, object: p.object, reason: p.reason });
      this.opts.onInvalid?.(p.object?.split(' ')[0] ?? 'file');
    }
    this.problems = next;
  }
}

function split(k: string): [string, string] {
  const i = k.indexOf('/');
  return [k.slice(0, i), k.slice(i + 1)];
}
