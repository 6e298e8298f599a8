/**
 * A fake Kubernetes API server for tests.
 *
 * It speaks the real list/watch protocol (JSON over plain HTTP/1.1, chunked
 * newline-delimited watch events, 410 Expired on too-old resourceVersions,
 * BOOKMARK events, label/field selectors) for the handful of resources
 * kube-proxy watches, so that the UNMODIFIED `@kubernetes/client-node`
 * informers can run against it:
 *
 *   services         core/v1                  (namespaced)
 *   endpointslices   discovery.k8s.io/v1      (namespaced)
 *   nodes            core/v1                  (cluster-scoped)
 *   servicecidrs     networking.k8s.io/v1     (cluster-scoped)
 *
 * Only GET is served over HTTP; tests mutate state with methods
 * (create/update/apply/delete) which bump the global resourceVersion and emit
 * watch events. Failure injection: failNext()/failAll() (HTTP error answers),
 * setDown() (listener closed → connection refused), closeWatches(),
 * compact() (older resourceVersions → 410 Expired).
 *
 * Usage:
 *   const api = await FakeApiServer.start();          // http://127.0.0.1:<random>
 *   const kc = kubeConfigFor(api);
 *   ...
 *   await api.close();
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

// ---------------------------------------------------------------------------
// Types

export type ResourceName = 'services' | 'endpointslices' | 'nodes' | 'servicecidrs';
export type Verb = 'list' | 'watch' | 'get' | 'discovery' | 'health' | 'unknown';
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  generation?: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

/** A loosely typed Kubernetes object as stored / served by the fake. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

/** A `meta/v1 Status` object (error answers and watch ERROR events). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; group?: string; kind?: string };
}

export interface ResourceDef {
  resource: ResourceName;
  group: string; // '' for core
  version: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceDef>> = {
  services: { resource: 'services', group: '', version: 'v1', kind: 'Service', listKind: 'ServiceList', namespaced: true },
  endpointslices: {
    resource: 'endpointslices',
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    listKind: 'EndpointSliceList',
    namespaced: true,
  },
  nodes: { resource: 'nodes', group: '', version: 'v1', kind: 'Node', listKind: 'NodeList', namespaced: false },
  servicecidrs: {
    resource: 'servicecidrs',
    group: 'networking.k8s.io',
    version: 'v1',
    kind: 'ServiceCIDR',
    listKind: 'ServiceCIDRList',
    namespaced: false,
  },
};

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

/** One HTTP request as seen by the fake (also failed / refused-by-injection ones). */
export interface RequestRecord {
  /** Sequence number, starting at 1. */
  seq: number;
  time: number;
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  verb: Verb;
  resource?: ResourceName;
  namespace?: string;
  name?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  /** HTTP status answered (a watch that got a 410 ERROR event still answers 200). */
  status: number;
  /** Set when the answer was produced by failNext()/failAll(). */
  injected?: boolean;
  via: 'tcp' | 'unix';
}

export interface FailFilter {
  resource?: ResourceName;
  verb?: Verb;
}

export interface FakeApiServerOptions {
  /** Interval of BOOKMARK events on watches that asked for them (allowWatchBookmarks=true). Default 1000 ms; 0 disables. */
  bookmarkIntervalMs?: number;
  /** Send bookmarks even when the client did not ask (client-node's informer never sets allowWatchBookmarks). Default false. */
  alwaysSendBookmarks?: boolean;
  /** Number of watch events retained for replay; older ones are dropped (a watch from before them gets 410). Default 1000. */
  maxHistory?: number;
  /** First resourceVersion handed out is initialResourceVersion + 1. Default 1000. */
  initialResourceVersion?: number;
  /** Cap of `requestLog` (counters are not capped). Default 10000. */
  maxRequestLog?: number;
  /** gitVersion reported by /version. Default 'v1.33.0-fake'. */
  gitVersion?: string;
}

export interface ListenOptions {
  /** Listen on TCP 127.0.0.1 (default true). */
  tcp?: boolean;
  /** TCP port, 0 = random (default 0). */
  port?: number;
  /** Also (or only) listen on this unix socket path. A stale file there is removed first. */
  socketPath?: string;
}

interface HistoryEntry {
  rv: number;
  resource: ResourceName;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** New state (for DELETED: last state, with the deletion resourceVersion). */
  object: KubeObject;
  /** Previous state for MODIFIED. */
  prev?: KubeObject;
}

interface Watcher {
  id: number;
  resource: ResourceName;
  res: http.ServerResponse;
  socket: Socket;
  filter: (obj: KubeObject) => boolean;
  /** Only events with rv > startRV are sent. */
  startRV: number;
  timers: NodeJS.Timeout[];
  closed: boolean;
}

// ---------------------------------------------------------------------------
// Selectors

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'gt' | 'lt'; key: string; value: number };

export class SelectorError extends Error {}

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const LABEL_KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

function checkKey(key: string, req: string): string {
  if (!LABEL_KEY.test(key)) throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${req}"`);
  return key;
}

/** Parses a Kubernetes label selector (`a`, `!a`, `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a>1`, `a<1`, comma = AND). */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  for (const part of splitTopLevel(selector)) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/))) {
      const values = m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      if (m[2] === 'in' && values.length === 0) throw new SelectorError(`unable to parse requirement: "${part}": for 'in' operator, values set can't be empty`);
      reqs.push({ op: m[2] as 'in' | 'notin', key: checkKey(m[1]!, part), values });
    } else if ((m = part.match(/^!\s*([^\s=!<>()]+)$/))) {
      reqs.push({ op: 'notexists', key: checkKey(m[1]!, part) });
    } else if ((m = part.match(/^([^\s=!<>()]+)\s*(==|=|!=)\s*([^\s=!<>(),]*)$/))) {
      reqs.push({ op: m[2] === '!=' ? 'neq' : 'eq', key: checkKey(m[1]!, part), value: m[3]! });
    } else if ((m = part.match(/^([^\s=!<>()]+)\s*([<>])\s*(-?\d+)$/))) {
      reqs.push({ op: m[2] === '>' ? 'gt' : 'lt', key: checkKey(m[1]!, part), value: Number(m[3]) });
    } else if ((m = part.match(/^([^\s=!<>()]+)$/))) {
      reqs.push({ op: 'exists', key: checkKey(m[1]!, part) });
    } else {
      throw new SelectorError(`unable to parse requirement: "${part}"`);
    }
  }
  return reqs;
}

export function labelsMatch(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  const has = (k: string) => Object.prototype.hasOwnProperty.call(l, k);
  for (const r of reqs) {
    switch (r.op) {
      case 'exists':
        if (!has(r.key)) return false;
        break;
      case 'notexists':
        if (has(r.key)) return false;
        break;
      case 'eq':
        if (!has(r.key) || l[r.key] !== r.value) return false;
        break;
      case 'neq':
        if (has(r.key) && l[r.key] === r.value) return false;
        break;
      case 'in':
        if (!has(r.key) || !r.values.includes(l[r.key]!)) return false;
        break;
      case 'notin':
        if (has(r.key) && r.values.includes(l[r.key]!)) return false;
        break;
      case 'gt':
      case 'lt': {
        if (!has(r.key)) return false;
        const n = Number(l[r.key]);
        if (!Number.isInteger(n)) return false;
        if (r.op === 'gt' ? !(n > r.value) : !(n < r.value)) return false;
        break;
      }
    }
  }
  return true;
}

type FieldRequirement = { field: 'metadata.name' | 'metadata.namespace'; op: 'eq' | 'neq'; value: string };

/** Parses a field selector; only metadata.name and metadata.namespace are supported (others → 400 like the real server). */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  const reqs: FieldRequirement[] = [];
  for (const part of splitTopLevel(selector)) {
    const m = part.match(/^([^\s=!]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    const field = m[1]!;
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new SelectorError(`field label not supported: ${field}`);
    }
    reqs.push({ field, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]!.trim() });
  }
  return reqs;
}

function fieldsMatch(reqs: FieldRequirement[], obj: KubeObject): boolean {
  for (const r of reqs) {
    const v = (r.field === 'metadata.name' ? obj.metadata.name : obj.metadata.namespace) ?? '';
    if (r.op === 'eq' ? v !== r.value : v === r.value) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Helpers

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function statusObject(code: number, message?: string, reason?: string, details?: Status['details']): Status {
  const s: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: message ?? (http.STATUS_CODES[code] ?? 'error').toLowerCase(),
    reason: reason ?? REASONS[code] ?? 'Unknown',
    code,
  };
  if (details) s.details = details;
  return s;
}

/** Error thrown by the mutation methods (AlreadyExists / NotFound). */
export class FakeApiError extends Error {
  constructor(
    readonly status: Status,
  ) {
    super(status.message);
  }
  get code(): number {
    return this.status.code;
  }
}

function clone<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

function k8sTimestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

// ---------------------------------------------------------------------------
// The server

/**
 * Events (EventEmitter): 'request' (RequestRecord), 'watch-open' ({ resource, id }),
 * 'watch-close' ({ resource, id }).
 */
export class FakeApiServer extends EventEmitter {
  readonly options: Required<FakeApiServerOptions>;

  /** Every request (capped at options.maxRequestLog, oldest dropped). */
  readonly requestLog: RequestRecord[] = [];

  private rv: number;
  /** History holds every event with rv > minRV. */
  private minRV: number;
  private history: HistoryEntry[] = [];
  private readonly store = new Map<ResourceName, Map<string, KubeObject>>();
  private readonly watchers = new Set<Watcher>();
  private readonly counters = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private tcpServer?: http.Server;
  private unixServer?: http.Server;
  private listenOpts?: ListenOptions;
  private tcpPort = 0;
  private seq = 0;
  private watchSeq = 0;
  private failQueue: { remaining: number; status: number; filter?: FailFilter }[] = [];
  private failAllState?: { status: number; filter?: FailFilter };
  private down = false;
  private closed = false;

  constructor(opts: FakeApiServerOptions = {}) {
    super();
    this.options = {
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 1000,
      alwaysSendBookmarks: opts.alwaysSendBookmarks ?? false,
      maxHistory: opts.maxHistory ?? 1000,
      initialResourceVersion: opts.initialResourceVersion ?? 1000,
      maxRequestLog: opts.maxRequestLog ?? 10000,
      gitVersion: opts.gitVersion ?? 'v1.33.0-fake',
    };
    this.rv = this.options.initialResourceVersion;
    this.minRV = this.rv;
    for (const r of Object.keys(RESOURCES) as ResourceName[]) this.store.set(r, new Map());
  }

  /** Creates a server and listens (TCP 127.0.0.1:random by default). */
  static async start(opts: FakeApiServerOptions & ListenOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.listen(opts);
    return s;
  }

  // ----- listening ---------------------------------------------------------

  async listen(opts: ListenOptions = {}): Promise<this> {
    if (this.closed) throw new Error('FakeApiServer: closed');
    if (this.listenOpts) throw new Error('FakeApiServer: already listening');
    this.listenOpts = { tcp: opts.tcp ?? true, port: opts.port ?? 0, socketPath: opts.socketPath };
    if (!this.listenOpts.tcp && !this.listenOpts.socketPath) throw new Error('FakeApiServer: nothing to listen on');
    await this.openListeners();
    return this;
  }

  /** `http://127.0.0.1:PORT` (throws when not listening on TCP). */
  get url(): string {
    if (!this.listenOpts?.tcp || !this.tcpPort) throw new Error('FakeApiServer: not listening on TCP');
    return `http://127.0.0.1:${this.tcpPort}`;
  }

  get port(): number {
    return this.tcpPort;
  }

  get socketPath(): string | undefined {
    return this.listenOpts?.socketPath;
  }

  private makeServer(via: 'tcp' | 'unix'): http.Server {
    const srv = http.createServer((req, res) => this.handle(req, res, via));
    srv.keepAliveTimeout = 5000;
    srv.on('connection', (sock: Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => {});
    });
    srv.on('clientError', (_err, sock: Socket) => sock.destroy());
    srv.on('error', () => {});
    return srv;
  }

  private async openListeners(): Promise<void> {
    const o = this.listenOpts!;
    if (o.tcp) {
      const srv = this.makeServer('tcp');
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        srv.once('error', onErr);
        srv.listen({ host: '127.0.0.1', port: this.tcpPort || o.port || 0, exclusive: true }, () => {
          srv.off('error', onErr);
          resolve();
        });
      });
      this.tcpPort = (srv.address() as AddressInfo).port;
      this.tcpServer = srv;
    }
    if (o.socketPath) {
      try {
        unlinkSync(o.socketPath);
      } catch {
        /* not there */
      }
      const srv = this.makeServer('unix');
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        srv.once('error', onErr);
        srv.listen({ path: o.socketPath, exclusive: true }, () => {
          srv.off('error', onErr);
          resolve();
        });
      });
      this.unixServer = srv;
    }
  }

  private async closeListeners(): Promise<void> {
    const servers = [this.tcpServer, this.unixServer].filter((s): s is http.Server => !!s);
    this.tcpServer = undefined;
    this.unixServer = undefined;
    const done = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const w of [...this.watchers]) this.endWatch(w, true);
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    await Promise.all(done);
  }

  /**
   * down=true: close the listeners and reset every connection (open watches die
   * with a socket error) — clients get ECONNREFUSED until setDown(false), which
   * listens again on the same port / socket path.
   */
  async setDown(down: boolean): Promise<void> {
    if (this.closed || down === this.down) return;
    this.down = down;
    if (down) await this.closeListeners();
    else await this.openListeners();
  }

  get isDown(): boolean {
    return this.down;
  }

  /** Ends every watch, resets all connections, stops listening, clears timers. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeListeners();
    this.removeAllListeners();
  }

  // ----- failure injection -------------------------------------------------

  /** The next `n` requests (matching `filter`, if given) are answered with HTTP `status` + a Status body. */
  failNext(n: number, status = 503, filter?: FailFilter): void {
    if (n > 0) this.failQueue.push({ remaining: n, status, filter });
  }

  /** Every request (matching `filter`) is answered with `status` until failAll(null). */
  failAll(status: number | null = 503, filter?: FailFilter): void {
    this.failAllState = status === null ? undefined : { status, filter };
  }

  private injectedFailure(verb: Verb, resource?: ResourceName): number | undefined {
    if (verb === 'health') return undefined;
    const matches = (f?: FailFilter) => !f || ((!f.resource || f.resource === resource) && (!f.verb || f.verb === verb));
    if (this.failAllState && matches(this.failAllState.filter)) return this.failAllState.status;
    const i = this.failQueue.findIndex((q) => matches(q.filter));
    if (i < 0) return undefined;
    const q = this.failQueue[i]!;
    if (--q.remaining <= 0) this.failQueue.splice(i, 1);
    return q.status;
  }

  // ----- watches -------------------------------------------------------------

  /**
   * Ends open watch streams. Default: cleanly (chunked stream terminated; client-node re-watches
   * from its last resourceVersion). abrupt: reset the TCP connection instead (client-node emits 'error').
   */
  closeWatches(opts: { resource?: ResourceName; abrupt?: boolean } = {}): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      if (opts.resource && w.resource !== opts.resource) continue;
      this.endWatch(w, opts.abrupt ?? false);
      n++;
    }
    return n;
  }

  /** Number of open watch streams (optionally for one resource). */
  watchCount(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.watchers) if (!resource || w.resource === resource) n++;
    return n;
  }

  /** Resolves once at least `n` watches on `resource` (any, if omitted) are open. */
  waitForWatches(n: number, resource?: ResourceName, timeoutMs = 5000): Promise<void> {
    return this.waitUntil(() => this.watchCount(resource) >= n, timeoutMs, `${n} watch(es) on ${resource ?? 'any resource'}`);
  }

  /** Resolves with the first request (at or after log position `sinceSeq`, default: future only) matching `pred`. */
  waitForRequest(pred: (r: RequestRecord) => boolean, timeoutMs = 5000, sinceSeq?: number): Promise<RequestRecord> {
    const from = sinceSeq ?? this.seq + 1;
    const past = this.requestLog.find((r) => r.seq >= from && pred(r));
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const onReq = (r: RequestRecord) => {
        if (r.seq >= from && pred(r)) {
          clearTimeout(t);
          this.off('request', onReq);
          resolve(r);
        }
      };
      const t = setTimeout(() => {
        this.off('request', onReq);
        reject(new Error(`FakeApiServer: timed out after ${timeoutMs} ms waiting for a request`));
      }, timeoutMs);
      t.unref();
      this.on('request', onReq);
    });
  }

  private waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          cleanup();
          resolve();
        }
      };
      const cleanup = () => {
        clearTimeout(t);
        this.off('watch-open', check);
        this.off('watch-close', check);
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`FakeApiServer: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      t.unref();
      this.on('watch-open', check);
      this.on('watch-close', check);
    });
  }

  // ----- state ---------------------------------------------------------------

  /** Current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Drops the event history: a watch from any resourceVersion older than the current one gets 410 Expired. */
  compact(): void {
    this.history = [];
    this.minRV = this.rv;
  }

  get(resource: ResourceName, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.store.get(resource)!.get(key(this.nsFor(resource, namespace), name));
    return o ? clone(o) : undefined;
  }

  list(resource: ResourceName, namespace?: string): KubeObject[] {
    return this.sorted(resource)
      .filter((o) => !namespace || o.metadata.namespace === namespace)
      .map(clone);
  }

  /** Creates an object (throws FakeApiError 409 AlreadyExists). Returns the stored object. */
  create(resource: ResourceName, obj: object): KubeObject {
    const def = RESOURCES[resource];
    const o = this.normalize(def, obj);
    const k = key(o.metadata.namespace, o.metadata.name!);
    const m = this.store.get(resource)!;
    if (m.has(k)) {
      throw new FakeApiError(
        statusObject(409, `${resource} "${o.metadata.name}" already exists`, 'AlreadyExists', { name: o.metadata.name, group: def.group, kind: resource }),
      );
    }
    o.metadata.uid ??= randomUUID();
    o.metadata.creationTimestamp ??= k8sTimestamp();
    o.metadata.generation = 1;
    o.metadata.resourceVersion = String(++this.rv);
    m.set(k, o);
    this.record({ rv: this.rv, resource, type: 'ADDED', object: o });
    return clone(o);
  }

  /**
   * Replaces an existing object (throws FakeApiError 404). uid/creationTimestamp are kept;
   * metadata.resourceVersion in `obj` is ignored (no optimistic-concurrency check).
   */
  update(resource: ResourceName, obj: object): KubeObject {
    const def = RESOURCES[resource];
    const o = this.normalize(def, obj);
    const k = key(o.metadata.namespace, o.metadata.name!);
    const m = this.store.get(resource)!;
    const prev = m.get(k);
    if (!prev) throw this.notFound(def, o.metadata.name!);
    o.metadata.uid = prev.metadata.uid;
    o.metadata.creationTimestamp = prev.metadata.creationTimestamp;
    const specChanged = JSON.stringify(o['spec']) !== JSON.stringify(prev['spec']);
    o.metadata.generation = (prev.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    o.metadata.resourceVersion = String(++this.rv);
    m.set(k, o);
    this.record({ rv: this.rv, resource, type: 'MODIFIED', object: o, prev });
    return clone(o);
  }

  /** Create-or-update. */
  apply(resource: ResourceName, obj: object): KubeObject {
    const def = RESOURCES[resource];
    const o = this.normalize(def, obj);
    return this.store.get(resource)!.has(key(o.metadata.namespace, o.metadata.name!)) ? this.update(resource, o) : this.create(resource, o);
  }

  /** Deletes an object (namespace ignored for cluster-scoped resources). Throws FakeApiError 404. Returns the final state. */
  delete(resource: ResourceName, namespace: string | undefined, name: string): KubeObject {
    const def = RESOURCES[resource];
    const m = this.store.get(resource)!;
    const k = key(this.nsFor(resource, namespace), name);
    const prev = m.get(k);
    if (!prev) throw this.notFound(def, name);
    m.delete(k);
    const last = clone(prev);
    last.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, resource, type: 'DELETED', object: last });
    return clone(last);
  }

  /** Deletes every object of a resource (one DELETED event each). */
  clear(resource: ResourceName): void {
    for (const o of this.sorted(resource)) this.delete(resource, o.metadata.namespace, o.metadata.name!);
  }

  // ----- counters ------------------------------------------------------------

  /** Number of requests for a resource and/or verb (undefined = any). Includes injected failures. */
  count(resource?: ResourceName, verb?: Verb): number {
    if (!resource && !verb) return this.seq;
    let n = 0;
    for (const [k, v] of this.counters) {
      const [r, vb] = k.split(':');
      if ((!resource || r === resource) && (!verb || vb === verb)) n += v;
    }
    return n;
  }

  /** Distinct label selectors used for a resource (''/undefined mapped to ''). */
  labelSelectorsUsed(resource: ResourceName, verb?: Verb): string[] {
    return [...new Set(this.requestLog.filter((r) => r.resource === resource && (!verb || r.verb === verb)).map((r) => r.labelSelector ?? ''))];
  }

  fieldSelectorsUsed(resource: ResourceName, verb?: Verb): string[] {
    return [...new Set(this.requestLog.filter((r) => r.resource === resource && (!verb || r.verb === verb)).map((r) => r.fieldSelector ?? ''))];
  }

  /** Resets requestLog and counters (not the state). */
  resetRequestLog(): void {
    this.requestLog.length = 0;
    this.counters.clear();
  }

  // ----- internals: objects -------------------------------------------------

  private nsFor(resource: ResourceName, namespace: string | undefined): string | undefined {
    return RESOURCES[resource].namespaced ? namespace || 'default' : undefined;
  }

  private notFound(def: ResourceDef, name: string): FakeApiError {
    const qualified = def.group ? `${def.resource}.${def.group}` : def.resource;
    return new FakeApiError(statusObject(404, `${qualified} "${name}" not found`, 'NotFound', { name, group: def.group, kind: def.resource }));
  }

  private normalize(def: ResourceDef, input: object): KubeObject {
    const o = clone(input) as KubeObject;
    if (!o || typeof o !== 'object') throw new Error('FakeApiServer: object expected');
    o.metadata ??= {};
    if (!o.metadata.name) throw new FakeApiError(statusObject(422, `${def.kind}: metadata.name: Required value`, 'Invalid'));
    o.apiVersion = apiVersionOf(def);
    o.kind = def.kind;
    if (def.namespaced) o.metadata.namespace ||= 'default';
    else delete o.metadata.namespace;
    return o;
  }

  private sorted(resource: ResourceName): KubeObject[] {
    return [...this.store.get(resource)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
  }

  private record(e: HistoryEntry): void {
    this.history.push(e);
    while (this.history.length > this.options.maxHistory) {
      const dropped = this.history.shift()!;
      this.minRV = dropped.rv;
    }
    for (const w of this.watchers) {
      if (w.resource === e.resource && !w.closed) this.deliver(w, e);
    }
  }

  // ----- internals: HTTP -----------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse, via: 'tcp' | 'unix'): void {
    res.on('error', () => {});
    req.on('error', () => {});
    const u = new URL(req.url ?? '/', 'http://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const route = this.route(u.pathname);
    const isWatch = query['watch'] === 'true' || query['watch'] === '1' || !!route.forceWatch;
    let verb: Verb = route.verb;
    if (route.resource) verb = isWatch ? 'watch' : route.name ? 'get' : 'list';

    const rec: RequestRecord = {
      seq: ++this.seq,
      time: Date.now(),
      method: req.method ?? 'GET',
      path: u.pathname,
      query,
      verb,
      resource: route.resource,
      namespace: route.namespace,
      name: route.name,
      labelSelector: query['labelSelector'],
      fieldSelector: query['fieldSelector'],
      resourceVersion: query['resourceVersion'],
      status: 200,
      via,
    };
    const ckey = `${route.resource ?? '-'}:${verb}`;
    this.counters.set(ckey, (this.counters.get(ckey) ?? 0) + 1);
    this.requestLog.push(rec);
    if (this.requestLog.length > this.options.maxRequestLog) this.requestLog.shift();

    const finish = () => this.emit('request', rec);
    try {
      const injected = this.injectedFailure(verb, route.resource);
      if (injected !== undefined) {
        rec.injected = true;
        rec.status = injected;
        const msg = injected === 503 ? 'the server is currently unable to handle the request' : undefined;
        this.sendJson(res, injected, statusObject(injected, msg));
      } else if (rec.method !== 'GET' && rec.method !== 'HEAD') {
        rec.status = 405;
        this.sendJson(res, 405, statusObject(405, `the server does not allow this method on the requested resource`));
      } else if (route.verb === 'health') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
      } else if (route.verb === 'discovery') {
        this.sendJson(res, 200, route.body);
      } else if (!route.resource) {
        rec.status = 404;
        this.sendJson(res, 404, statusObject(404, 'the server could not find the requested resource', 'NotFound', {}));
      } else {
        rec.status = this.serveResource(req, res, route, query, isWatch);
      }
    } catch (e) {
      rec.status = 500;
      if (!res.headersSent) this.sendJson(res, 500, statusObject(500, String((e as Error)?.message ?? e)));
      else res.destroy();
    }
    finish();
  }

  private sendJson(res: http.ServerResponse, code: number, body: unknown): void {
    const data = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), 'Cache-Control': 'no-cache, private' });
    res.end(data);
  }

  private route(pathname: string): {
    verb: Verb;
    resource?: ResourceName;
    namespace?: string;
    name?: string;
    forceWatch?: boolean;
    body?: unknown;
  } {
    const seg = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    const p = seg.join('/');
    if (['healthz', 'livez', 'readyz'].includes(p)) return { verb: 'health' };
    if (p === 'version') return { verb: 'discovery', body: this.versionInfo() };
    if (p === 'api') {
      return { verb: 'discovery', body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }] } };
    }
    if (p === 'apis') return { verb: 'discovery', body: this.groupList() };
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg.length >= 2) {
      group = '';
      version = seg[1]!;
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg.length >= 3) {
      group = seg[1]!;
      version = seg[2]!;
      rest = seg.slice(3);
    } else if (seg[0] === 'apis' && seg.length === 2) {
      const g = this.groupList().groups.find((x) => x.name === seg[1]);
      return g ? { verb: 'discovery', body: { kind: 'APIGroup', apiVersion: 'v1', ...g } } : { verb: 'unknown' };
    } else {
      return { verb: 'unknown' };
    }
    const defs = Object.values(RESOURCES).filter((d) => d.group === group && d.version === version);
    if (defs.length === 0) return { verb: 'unknown' };
    if (rest.length === 0) {
      return {
        verb: 'discovery',
        body: {
          kind: 'APIResourceList',
          apiVersion: 'v1',
          groupVersion: group ? `${group}/${version}` : version,
          resources: defs.map((d) => ({
            name: d.resource,
            singularName: d.kind.toLowerCase(),
            namespaced: d.namespaced,
            kind: d.kind,
            verbs: ['get', 'list', 'watch'],
          })),
        },
      };
    }
    let forceWatch = false;
    if (rest[0] === 'watch') {
      // deprecated /api/v1/watch/... form
      forceWatch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    if (rest.length < 1 || rest.length > 2) return { verb: 'unknown' };
    const def = defs.find((d) => d.resource === rest[0]);
    if (!def || (namespace !== undefined && !def.namespaced)) return { verb: 'unknown' };
    if (rest.length === 2 && def.namespaced && namespace === undefined) return { verb: 'unknown' };
    return { verb: 'list', resource: def.resource, namespace, name: rest[1], forceWatch };
  }

  private versionInfo() {
    const m = this.options.gitVersion.match(/^v(\d+)\.(\d+)/);
    return {
      major: m?.[1] ?? '1',
      minor: m?.[2] ?? '33',
      gitVersion: this.options.gitVersion,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2025-01-01T00:00:00Z',
      goVersion: 'go1.24.0',
      compiler: 'gc',
      platform: 'linux/amd64',
    };
  }

  private groupList() {
    const groups = [...new Set(Object.values(RESOURCES).map((d) => d.group))].filter((g) => g !== '');
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: groups.map((g) => {
        const v = Object.values(RESOURCES).find((d) => d.group === g)!.version;
        const gv = { groupVersion: `${g}/${v}`, version: v };
        return { name: g, versions: [gv], preferredVersion: gv };
      }),
    };
  }

  /** Serves get/list/watch for a resource; returns the HTTP status. */
  private serveResource(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: { resource?: ResourceName; namespace?: string; name?: string },
    query: Record<string, string>,
    isWatch: boolean,
  ): number {
    const resource = route.resource!;
    const def = RESOURCES[resource];
    let labelReqs: LabelRequirement[];
    let fieldReqs: FieldRequirement[];
    try {
      labelReqs = parseLabelSelector(query['labelSelector'] ?? '');
      fieldReqs = parseFieldSelector(query['fieldSelector'] ?? '');
    } catch (e) {
      this.sendJson(res, 400, statusObject(400, (e as Error).message, 'BadRequest'));
      return 400;
    }
    const ns = route.namespace;
    const name = route.name;
    const filter = (o: KubeObject) =>
      (ns === undefined || o.metadata.namespace === ns) &&
      (name === undefined || o.metadata.name === name) &&
      labelsMatch(labelReqs, o.metadata.labels) &&
      fieldsMatch(fieldReqs, o);

    if (isWatch) return this.startWatch(req, res, resource, filter, query);

    if (name !== undefined) {
      const o = this.store.get(resource)!.get(key(ns, name));
      if (!o) {
        this.sendJson(res, 404, this.notFound(def, name).status);
        return 404;
      }
      this.sendJson(res, 200, o);
      return 200;
    }
    // LIST. Items of a real list answer carry no kind/apiVersion.
    const items = this.sorted(resource)
      .filter(filter)
      .map((o) => {
        const { kind: _k, apiVersion: _a, ...rest } = o;
        return rest;
      });
    this.sendJson(res, 200, {
      kind: def.listKind,
      apiVersion: apiVersionOf(def),
      metadata: { resourceVersion: String(this.rv) },
      items,
    });
    return 200;
  }

  private startWatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    resource: ResourceName,
    filter: (o: KubeObject) => boolean,
    query: Record<string, string>,
  ): number {
    const def = RESOURCES[resource];
    const rvParam = query['resourceVersion'] ?? '';
    let startRV: number;
    let initial = false;
    if (rvParam === '' || rvParam === '0') {
      startRV = this.rv;
      initial = query['sendInitialEvents'] !== 'false';
    } else if (/^\d+$/.test(rvParam)) {
      startRV = Number(rvParam);
    } else {
      this.sendJson(res, 400, statusObject(400, `invalid resource version: "${rvParam}"`, 'BadRequest'));
      return 400;
    }

    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();

    if (startRV < this.minRV) {
      // What the watch cache does: 200, one ERROR event with 410 Expired, end of stream.
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: statusObject(410, `too old resource version: ${startRV} (${this.minRV + 1})`, 'Expired'),
        }) + '\n',
      );
      return 200;
    }

    const w: Watcher = {
      id: ++this.watchSeq,
      resource,
      res,
      socket: req.socket,
      filter,
      startRV,
      timers: [],
      closed: false,
    };
    // 'close' on the response also fires when the client goes away.
    res.on('close', () => this.endWatch(w, false));

    if (initial) {
      for (const o of this.sorted(resource)) if (filter(o)) this.writeEvent(w, 'ADDED', o);
      if (query['sendInitialEvents'] === 'true' && query['allowWatchBookmarks'] === 'true') {
        this.writeEvent(w, 'BOOKMARK', {
          kind: def.kind,
          apiVersion: apiVersionOf(def),
          metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } },
        });
      }
    } else {
      for (const e of this.history) if (e.rv > startRV && e.resource === resource) this.deliver(w, e);
    }

    const bookmarks = this.options.bookmarkIntervalMs > 0 && (query['allowWatchBookmarks'] === 'true' || this.options.alwaysSendBookmarks);
    if (bookmarks) {
      const t = setInterval(() => {
        this.writeEvent(w, 'BOOKMARK', { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.rv) } });
      }, this.options.bookmarkIntervalMs);
      t.unref();
      w.timers.push(t);
    }
    const timeoutSeconds = Number(query['timeoutSeconds']);
    if (query['timeoutSeconds'] !== undefined && Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) {
      const t = setTimeout(() => this.endWatch(w, false), timeoutSeconds * 1000);
      t.unref();
      w.timers.push(t);
    }
    this.watchers.add(w);
    this.emit('watch-open', { resource, id: w.id });
    return 200;
  }

  /** Sends history entry `e` to `w` as the event a real server would send for w's filter. */
  private deliver(w: Watcher, e: HistoryEntry): void {
    if (e.rv <= w.startRV) return;
    const cur = w.filter(e.object);
    switch (e.type) {
      case 'ADDED':
        if (cur) this.writeEvent(w, 'ADDED', e.object);
        break;
      case 'DELETED':
        if (cur) this.writeEvent(w, 'DELETED', e.object);
        break;
      case 'MODIFIED': {
        const prev = e.prev ? w.filter(e.prev) : false;
        if (cur && prev) this.writeEvent(w, 'MODIFIED', e.object);
        else if (cur) this.writeEvent(w, 'ADDED', e.object);
        else if (prev) {
          // stopped matching: DELETED with the previous content at the event's resourceVersion
          const o = clone(e.prev!);
          o.metadata.resourceVersion = String(e.rv);
          this.writeEvent(w, 'DELETED', o);
        }
        break;
      }
    }
  }

  private writeEvent(w: Watcher, type: WatchEventType, object: unknown): void {
    if (w.closed || w.res.writableEnded || w.res.destroyed) return;
    w.res.write(JSON.stringify({ type, object }) + '\n');
  }

  private endWatch(w: Watcher, abrupt: boolean): void {
    if (!w.closed) {
      w.closed = true;
      for (const t of w.timers) clearTimeout(t);
      w.timers = [];
      this.watchers.delete(w);
      this.emit('watch-close', { resource: w.resource, id: w.id });
    }
    if (abrupt) w.socket.destroy();
    else if (!w.res.writableEnded) w.res.end();
  }
}

// ---------------------------------------------------------------------------

/** A KubeConfig pointing at the fake server (plain http://; skipTLSVerify is what makes client-node accept http). */
export function kubeConfigFor(server: FakeApiServer | string): KubeConfig {
  const url = typeof server === 'string' ? server : server.url;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}
