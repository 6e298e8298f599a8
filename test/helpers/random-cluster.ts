/**
 * Deterministic random cluster churn for property tests: a seeded generator
 * of Services and EndpointSlices and of changes to them, applied to a store.
 */
import type { ClusterStore } from '../../src/agent/model/store.js';
import type { EndpointSlice, Protocol, Service, ServiceType } from '../../src/agent/model/types.js';
import { service, slice } from './model.js';

/** mulberry32: small, fast, good enough for tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class RandomCluster {
  private readonly services = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  private next = 1;
  readonly log: string[] = [];

  constructor(
    private readonly store: ClusterStore,
    private readonly rand: () => number,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private ip(prefix: string): string {
    return `${prefix}.${1 + Math.floor(this.rand() * 250)}`;
  }

  /** One random change. */
  step(): void {
    const names = [...this.services.keys()];
    const r = this.rand();
    if (names.length < 3 || r < 0.2) return this.addService();
    const name = this.pick(names);
    if (r < 0.3) return this.deleteService(name);
    if (r < 0.75) return this.changeEndpoints(name);
    if (r < 0.85) return this.changeService(name);
    return this.flipReadiness(name);
  }

  private addService(): void {
    const n = this.next++;
    const name = `svc-${n}`;
    const type: ServiceType = this.pick(['ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer'] as const);
    const protocol: Protocol = this.pick(['TCP', 'TCP', 'UDP', 'SCTP'] as const);
    const svc = service({
      name,
      type,
      clusterIPs: [`10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`],
      loadBalancerIPs: type === 'LoadBalancer' ? [this.ip('198.51.100')] : [],
      externalIPs: this.rand() < 0.2 ? [this.ip('192.0.2')] : [],
      ports: [{ name: 'p', protocol, port: 80 + Math.floor(this.rand() * 3), nodePort: type === 'ClusterIP' ? 0 : 30000 + n, targetPort: 8080 }],
    });
    this.services.set(name, svc);
    this.store.upsertService(svc);
    this.log.push(`add ${name} ${type} ${protocol}`);
    if (this.rand() < 0.8) this.changeEndpoints(name);
  }

  private deleteService(name: string): void {
    this.services.delete(name);
    this.store.deleteService('ns', name);
    this.log.push(`delete ${name}`);
    if (this.rand() < 0.5 && this.slices.has(name)) {
      this.slices.delete(name);
      this.store.deleteSlice('ns', `${name}-a`);
    }
  }

  private changeEndpoints(name: string): void {
    const svc = this.services.get(name)!;
    const count = Math.floor(this.rand() * 5);
    const eps = Array.from({ length: count }, () => ({ ip: this.ip('10.244.1') }));
    const sl = slice(name, eps, { ports: [{ name: 'p', protocol: svc.ports[0]!.protocol, port: 8080 }] });
    this.slices.set(name, sl);
    this.store.upsertSlice(sl);
    this.log.push(`endpoints ${name} ${eps.map((e) => e.ip).join(',')}`);
  }

  private flipReadiness(name: string): void {
    const sl = this.slices.get(name);
    if (!sl || sl.endpoints.length === 0) return this.changeEndpoints(name);
    const i = Math.floor(this.rand() * sl.endpoints.length);
    const e = sl.endpoints[i]!;
    const ready = !e.conditions.ready;
    const next: EndpointSlice = { ...sl, endpoints: sl.endpoints.map((x, j) => (j === i ? { ...x, conditions: { ready, serving: ready || this.rand() < 0.5, terminating: !ready } } : x)) };
    this.slices.set(name, next);
    this.store.upsertSlice(next);
    this.log.push(`readiness ${name} ${e.addresses[0]} ${ready}`);
  }

  private changeService(name: string): void {
    const svc = this.services.get(name)!;
    const next: Service = { ...svc, externalIPs: svc.externalIPs.length > 0 ? [] : [this.ip('192.0.2')], ports: svc.ports.map((p) => ({ ...p, port: p.port === 80 ? 81 : 80 })) };
    this.services.set(name, next);
    this.store.upsertService(next);
    this.log.push(`change ${name}`);
  }
}
