/**
 * One watched resource: an unmodified @kubernetes/client-node informer,
 * restarted with exponential backoff whenever it reports an error (the API
 * server down, a 5xx, a broken connection). A 410 Gone is handled by the
 * informer itself (it re-lists, and emits deletes for what vanished), so no
 * change is lost across a gap. Logs one warning when an outage starts and one
 * line when it ends, not one per retry.
 */
import { ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, KubernetesListObject } from '@kubernetes/client-node';
import type { Logger } from '../../log.js';

export interface WatchedOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Name for logs, e.g. "services". */
  resource: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  initialBackoffMs: number;
  maxBackoffMs: number;
  onUpsert(obj: T): void;
  onDelete(obj: T): void;
  /** An error that means "this resource is not served here": stop trying, count as synced. */
  isNotServed?(err: unknown): boolean;
  /**
   * Once onUpsert has read an object, trim the informer's cached copy to what
   * the informer itself uses (see trimToIdentity). For resources whose model
   * the agent keeps itself: the cache would otherwise hold a second, larger
   * copy of every Service and EndpointSlice (upstream strips managedFields
   * with an informer transform for the same reason).
   */
  trimCached?: boolean;
}

/**
 * Reduces an object, in place, to its kind and identity: metadata.name,
 * namespace, resourceVersion and uid. That is all the informer reads of the
 * objects it caches: it keys them by namespace and name, compares
 * resourceVersions on a re-list, and hands the cached object to the delete
 * handlers, which only read its namespace and name. Other fields are set to
 * undefined rather than deleted, and metadata is replaced by a small fresh
 * object: deleting properties would turn every cached object into a
 * dictionary as large as what it dropped.
 */
export function trimToIdentity(obj: KubernetesObject): void {
  const o = obj as unknown as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'apiVersion' && k !== 'kind' && k !== 'metadata' && o[k] !== undefined) o[k] = undefined;
  const md = obj.metadata;
  if (!md || typeof md !== 'object') return;
  const kept: Record<string, string> = {};
  for (const k of ['name', 'namespace', 'resourceVersion', 'uid'] as const) if (typeof md[k] === 'string') kept[k] = md[k];
  obj.metadata = kept;
}

export function errorText(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { statusCode?: number; code?: number | string; message?: string; body?: unknown };
    const status = e.statusCode ?? (typeof e.code === 'number' ? e.code : undefined);
    const msg = e.message ?? String(err);
    return status !== undefined ? `HTTP ${status}: ${msg}` : msg;
  }
  return String(err);
}

export class Watched<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private backoff: number;
  private errored = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private outageSince: number | undefined;
  private resolveSynced!: () => void;
  /** Resolves once the first complete list has been delivered. */
  readonly synced: Promise<void>;
  hasSynced = false;
  notServed = false;

  constructor(private readonly o: WatchedOptions<T>) {
    this.backoff = o.initialBackoffMs;
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
    this.informer = new ListWatch<T>(o.path, new Watch(o.kc), o.list, false, o.labelSelector, o.fieldSelector);
    // The object handed to add/update is the one the informer has just cached.
    const upsert = (obj: T): void => {
      o.onUpsert(obj);
      if (o.trimCached) trimToIdentity(obj);
    };
    this.informer.on('add', upsert);
    this.informer.on('update', upsert);
    this.informer.on('delete', (obj) => o.onDelete(obj));
    this.informer.on('error', (err) => this.failed(err));
  }

  start(): void {
    void this.run();
  }

  /** What the informer holds now (trimmed objects when trimCached is set). */
  cached(): readonly T[] {
    return this.informer.list();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.informer.stop();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.errored = false;
    try {
      await this.informer.start();
    } catch (err) {
      this.failed(err);
      return;
    }
    if (this.errored || this.stopped) return;
    // The list (if one was needed) succeeded and the watch is open.
    this.backoff = this.o.initialBackoffMs;
    if (this.outageSince !== undefined) {
      this.o.log.info(0, 'API server reachable again; watch re-established', { resource: this.o.resource, downForMs: Date.now() - this.outageSince });
      this.outageSince = undefined;
    }
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.o.log.info(2, 'initial list complete', { resource: this.o.resource, objects: this.informer.list().length });
      this.resolveSynced();
    }
  }

  private failed(err: unknown): void {
    if (this.errored) return;
    this.errored = true;
    if (this.stopped) return;
    if (this.o.isNotServed?.(err)) {
      this.notServed = true;
      this.o.log.info(2, 'resource not served by this API server; not watching it', { resource: this.o.resource, err: errorText(err) });
      if (!this.hasSynced) {
        this.hasSynced = true;
        this.resolveSynced();
      }
      return;
    }
    const retryInMs = this.backoff;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.o.log.warn('cannot list/watch from the API server; keeping the current rules and retrying', { resource: this.o.resource, err: errorText(err), retryInMs });
    } else {
      this.o.log.info(2, 'API server still unreachable', { resource: this.o.resource, err: errorText(err), retryInMs });
    }
    this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.run(), retryInMs);
  }
}
