/**
 * The cluster store: the valid Services, EndpointSlices and own Node that
 * sources have delivered, the service ports derived from them, and the set
 * of service ports changed since the last successful sync.
 *
 * Derived service ports are rebuilt only for services touched since the
 * previous snapshot, so the cost of a change follows the change. A
 * ServicePort, once in a snapshot, is never changed: a change builds a new
 * object, and an untouched service keeps its objects (the iptables backend
 * keeps the ServicePort each port was rendered from, instead of its rules).
 */
import { buildServicePorts } from './service-ports.js';
import type { ChangeKind, ChangeSet, EndpointSlice, IPFamily, NodeInfo, Service, ServicePort, Snapshot } from './types.js';

/** What sources write to: one store, or several (one per address family). */
export interface ClusterSink {
  readonly nodeName: string;
  upsertService(svc: Service): void;
  deleteService(namespace: string, name: string): void;
  upsertSlice(slice: EndpointSlice): void;
  deleteSlice(namespace: string, name: string): void;
  setNode(node: NodeInfo | undefined): void;
}

/** Fans every change out to one store per address family. */
export class FamilyStores implements ClusterSink {
  constructor(readonly stores: readonly ClusterStore[]) {
    if (stores.length === 0) throw new Error('FamilyStores needs at least one store');
  }

  get nodeName(): string {
    return this.stores[0]!.nodeName;
  }

  get serviceCount(): number {
    return this.stores[0]!.serviceCount;
  }

  upsertService(svc: Service): void {
    for (const s of this.stores) s.upsertService(svc);
  }

  deleteService(namespace: string, name: string): void {
    for (const s of this.stores) s.deleteService(namespace, name);
  }

  upsertSlice(slice: EndpointSlice): void {
    for (const s of this.stores) s.upsertSlice(slice);
  }

  deleteSlice(namespace: string, name: string): void {
    for (const s of this.stores) s.deleteSlice(namespace, name);
  }

  setNode(node: NodeInfo | undefined): void {
    for (const s of this.stores) s.setNode(node);
  }
}

export class ClusterStore implements ClusterSink {
  private readonly services = new Map<string, Service>();
  /** service `ns/name` → slice name → slice */
  private readonly slices = new Map<string, Map<string, EndpointSlice>>();
  /** slice `ns/name` → service `ns/name`, to find a slice's old service on update/delete */
  private readonly sliceOwner = new Map<string, string>();
  private node: NodeInfo | undefined;

  private readonly portsByService = new Map<string, ServicePort[]>();
  private readonly servicePorts = new Map<string, ServicePort>();
  private endpointCount = 0;
  /** services whose derived ports must be rebuilt */
  private readonly dirtyServices = new Set<string>();
  /** service-port keys changed since the last successful sync */
  private pendingPorts = new Set<string>();
  private pendingNode = false;
  private firstPendingAt: number | undefined;
  /** endpoints.kubernetes.io/last-change-trigger-time of slice changes not yet synced */
  private pendingTriggerTimes: number[] = [];
  private readonly listeners: Array<(kind: ChangeKind) => void> = [];

  constructor(
    readonly nodeName: string,
    readonly family: IPFamily = 'IPv4',
  ) {}

  /** Called after every change, so a sync runner can schedule a sync. */
  onChange(fn: (kind: ChangeKind) => void): void {
    this.listeners.push(fn);
  }

  upsertService(svc: Service): void {
    const key = `${svc.namespace}/${svc.name}`;
    this.services.set(key, svc);
    this.touch(key, 'Service');
  }

  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.services.delete(key)) this.touch(key, 'Service');
  }

  upsertSlice(slice: EndpointSlice): void {
    const sliceKey = `${slice.namespace}/${slice.name}`;
    const svcKey = `${slice.namespace}/${slice.serviceName}`;
    const prevOwner = this.sliceOwner.get(sliceKey);
    if (prevOwner !== undefined && prevOwner !== svcKey) this.removeSlice(sliceKey, prevOwner);
    let m = this.slices.get(svcKey);
    if (!m) this.slices.set(svcKey, (m = new Map()));
    m.set(slice.name, slice);
    this.sliceOwner.set(sliceKey, svcKey);
    // Only this family's slices program this family's rules (and count for its latency).
    if (slice.triggerTime !== undefined && slice.addressType === this.family) this.pendingTriggerTimes.push(slice.triggerTime);
    this.touch(svcKey, 'EndpointSlice');
  }

  deleteSlice(namespace: string, name: string): void {
    const sliceKey = `${namespace}/${name}`;
    const owner = this.sliceOwner.get(sliceKey);
    if (owner !== undefined) this.removeSlice(sliceKey, owner);
  }

  setNode(node: NodeInfo | undefined): void {
    if (JSON.stringify(node) === JSON.stringify(this.node)) return;
    this.node = node;
    this.pendingNode = true;
    this.markPending('Node');
  }

  hasService(namespace: string, name: string): boolean {
    return this.services.has(`${namespace}/${name}`);
  }

  get serviceCount(): number {
    return this.services.size;
  }

  /** Changes are waiting for a sync. */
  get hasPendingChanges(): boolean {
    return this.dirtyServices.size > 0 || this.pendingPorts.size > 0 || this.pendingNode;
  }

  /** When the oldest change not yet synced arrived (ms since epoch). */
  get oldestPendingChange(): number | undefined {
    return this.firstPendingAt;
  }

  /**
   * An immutable snapshot plus the changes since the last successful sync.
   * The changes stay pending until `commit(changes)` is called after the
   * sync succeeded.
   */
  snapshot(): { snapshot: Snapshot; changes: ChangeSet } {
    for (const svcKey of this.dirtyServices) this.rebuild(svcKey);
    this.dirtyServices.clear();
    const changes: ChangeSet = { servicePorts: new Set(this.pendingPorts), node: this.pendingNode, triggerTimes: [...this.pendingTriggerTimes] };
    const snapshot: Snapshot = {
      nodeName: this.nodeName,
      ...(this.node ? { node: this.node } : {}),
      servicePorts: new Map(this.servicePorts),
      endpointCount: this.endpointCount,
    };
    return { snapshot, changes };
  }

  /** Marks the given changes as synced. Changes that arrived meanwhile stay pending. */
  commit(changes: ChangeSet): void {
    for (const k of changes.servicePorts) this.pendingPorts.delete(k);
    if (changes.node) this.pendingNode = false;
    this.pendingTriggerTimes = this.pendingTriggerTimes.slice(changes.triggerTimes.length);
    if (!this.hasPendingChanges) this.firstPendingAt = undefined;
  }

  private removeSlice(sliceKey: string, svcKey: string): void {
    const m = this.slices.get(svcKey);
    const name = sliceKey.slice(sliceKey.indexOf('/') + 1);
    m?.delete(name);
    if (m && m.size === 0) this.slices.delete(svcKey);
    this.sliceOwner.delete(sliceKey);
    this.touch(svcKey, 'EndpointSlice');
  }

  private touch(svcKey: string, kind: ChangeKind): void {
    this.dirtyServices.add(svcKey);
    this.markPending(kind);
  }

  private markPending(kind: ChangeKind): void {
    if (this.firstPendingAt === undefined) this.firstPendingAt = Date.now();
    for (const fn of this.listeners) fn(kind);
  }

  private rebuild(svcKey: string): void {
    const old = this.portsByService.get(svcKey) ?? [];
    const svc = this.services.get(svcKey);
    const fresh = svc ? buildServicePorts(svc, this.slices.get(svcKey)?.values() ?? [], this.nodeName, this.family) : [];
    const oldByKey = new Map(old.map((p) => [p.key, p]));
    for (const p of old) {
      this.servicePorts.delete(p.key);
      this.endpointCount -= p.endpoints.length;
    }
    for (const p of fresh) {
      this.servicePorts.set(p.key, p);
      this.endpointCount += p.endpoints.length;
      const prev = oldByKey.get(p.key);
      if (!prev || JSON.stringify(prev) !== JSON.stringify(p)) this.pendingPorts.add(p.key);
      oldByKey.delete(p.key);
    }
    for (const k of oldByKey.keys()) this.pendingPorts.add(k);
    if (fresh.length > 0) this.portsByService.set(svcKey, fresh);
    else this.portsByService.delete(svcKey);
  }
}
