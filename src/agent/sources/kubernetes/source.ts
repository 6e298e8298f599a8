/**
 * The API server source: Services, EndpointSlices, this node's Node and the
 * ServiceCIDRs, through @kubernetes/client-node informers. Objects are
 * validated here, at the edge, exactly as the manifests source does; an
 * invalid object is rejected with one warning (repeated only if its reason
 * changes), counted, and treated as absent.
 *
 * Like upstream, headless services and services that belong to another proxy
 * (label service.kubernetes.io/service-proxy-name) are filtered by label
 * selectors on the watch, so the API server sends less.
 */
import { CoreV1Api, DiscoveryV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, V1EndpointSlice, V1Node, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';
import type { Logger } from '../../log.js';
import type { ClusterSink } from '../../model/store.js';
import { describeObject, validateEndpointSlice, validateNode, validateService } from '../validate.js';
import { Watched } from './watched.js';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

export interface ServiceCIDRInfo {
  name: string;
  cidrs: string[];
}

export interface KubernetesSourceOptions {
  kc: KubeConfig;
  store: ClusterSink;
  log: Logger;
  /** When set, services labelled with this proxy name are proxied too (unlabelled ones always are). */
  serviceProxyName?: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** An object was rejected as invalid. */
  onInvalid?(kind: string, object: string, reason: string): void;
  /** A Service or EndpointSlice event arrived (for change counters). */
  onChange?(kind: 'Service' | 'EndpointSlice'): void;
  /** The raw Node object (or undefined when deleted), for node eligibility. */
  onNode?(node: V1Node | undefined): void;
  /** Every CIDR of every ServiceCIDR object, after each ServiceCIDR event. */
  onServiceCIDRs?(cidrs: string[]): void;
}

/** The label selector for Services and EndpointSlices, as upstream builds it. */
export function serviceLabelSelector(serviceProxyName?: string): string {
  return serviceProxyName ? `!${HEADLESS_LABEL}` : `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`;
}

/**
 * Watch query parameters the informer does not add itself: bookmarks (cheap
 * resumption) and a server-side timeout of 5-10 minutes, as upstream's
 * reflector uses, so a half-open connection cannot stall a watch forever.
 */
function watchPath(path: string): string {
  const timeout = 300 + Math.floor(Math.random() * 300);
  return `${path}?allowWatchBookmarks=true&timeoutSeconds=${timeout}`;
}

const ref = (o: KubernetesObject): { namespace: string; name: string } => ({ namespace: o.metadata?.namespace || 'default', name: o.metadata?.name ?? '' });

export class KubernetesSource {
  private readonly watched: Watched<KubernetesObject>[] = [];
  private readonly warned = new Map<string, string>();
  private readonly serviceCIDRs = new Map<string, ServiceCIDRInfo>();
  private readonly serviceCIDRWatch: Watched<V1ServiceCIDR>;

  constructor(private readonly o: KubernetesSourceOptions) {
    const { kc, store, log } = o;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const networking = kc.makeApiClient(NetworkingV1Api);
    const labelSelector = serviceLabelSelector(o.serviceProxyName);
    const common = { kc, log, initialBackoffMs: o.initialBackoffMs ?? 1000, maxBackoffMs: o.maxBackoffMs ?? 30_000 };

    const services = new Watched<V1Service>({
      ...common,
      resource: 'services',
      trimCached: true,
      path: watchPath('/api/v1/services'),
      labelSelector,
      list: () => core.listServiceForAllNamespaces({ labelSelector }),
      onUpsert: (svc) => {
        o.onChange?.('Service');
        const { namespace, name } = ref(svc);
        if (!this.mine(svc)) return store.deleteService(namespace, name);
        const r = validateService(svc);
        if (r.ok) {
          this.clearWarning(svc);
          store.upsertService(r.value);
        } else {
          this.reject('Service', svc, r.reason);
          store.deleteService(namespace, name);
        }
      },
      onDelete: (svc) => {
        o.onChange?.('Service');
        this.clearWarning(svc);
        store.deleteService(ref(svc).namespace, ref(svc).name);
      },
    });
    const slices = new Watched<V1EndpointSlice>({
      ...common,
      resource: 'endpointslices',
      trimCached: true,
      path: watchPath('/apis/discovery.k8s.io/v1/endpointslices'),
      labelSelector,
      list: () => discovery.listEndpointSliceForAllNamespaces({ labelSelector }),
      onUpsert: (slice) => {
        o.onChange?.('EndpointSlice');
        const { namespace, name } = ref(slice);
        if (!this.mine(slice)) return store.deleteSlice(namespace, name);
        const r = validateEndpointSlice(slice);
        if (r.ok) {
          this.clearWarning(slice);
          store.upsertSlice(r.value);
        } else {
          this.reject('EndpointSlice', slice, r.reason);
          store.deleteSlice(namespace, name);
        }
      },
      onDelete: (slice) => {
        o.onChange?.('EndpointSlice');
        this.clearWarning(slice);
        store.deleteSlice(ref(slice).namespace, ref(slice).name);
      },
    });
    const fieldSelector = `metadata.name=${store.nodeName}`;
    const node = new Watched<V1Node>({
      ...common,
      resource: 'node',
      path: watchPath('/api/v1/nodes'),
      fieldSelector,
      list: () => core.listNode({ fieldSelector }),
      onUpsert: (n) => {
        if (n.metadata?.name !== store.nodeName) return;
        o.onNode?.(n);
        const r = validateNode(n);
        if (r.ok) {
          this.clearWarning(n);
          store.setNode(r.value);
        } else {
          this.reject('Node', n, r.reason);
        }
      },
      onDelete: (n) => {
        if (n.metadata?.name !== store.nodeName) return;
        o.onNode?.(undefined);
        store.setNode(undefined);
      },
    });
    this.serviceCIDRWatch = new Watched<V1ServiceCIDR>({
      ...common,
      resource: 'servicecidrs',
      path: watchPath('/apis/networking.k8s.io/v1/servicecidrs'),
      list: () => networking.listServiceCIDR(),
      isNotServed: (err) => (err as { code?: number; statusCode?: number }).code === 404 || (err as { statusCode?: number }).statusCode === 404,
      onUpsert: (sc) => {
        const name = sc.metadata?.name ?? '';
        this.serviceCIDRs.set(name, { name, cidrs: sc.spec?.cidrs ?? [] });
        o.onServiceCIDRs?.(this.allServiceCIDRs());
      },
      onDelete: (sc) => {
        this.serviceCIDRs.delete(sc.metadata?.name ?? '');
        o.onServiceCIDRs?.(this.allServiceCIDRs());
      },
    });
    this.watched.push(services as Watched<KubernetesObject>, slices as Watched<KubernetesObject>, node as Watched<KubernetesObject>, this.serviceCIDRWatch as Watched<KubernetesObject>);
  }

  /** Starts every informer; resolves once each has delivered its first complete list. */
  async start(): Promise<void> {
    for (const w of this.watched) w.start();
    await Promise.all(this.watched.map((w) => w.synced));
  }

  async stop(): Promise<void> {
    await Promise.all(this.watched.map((w) => w.stop()));
  }

  /** ServiceCIDR ranges known from the API server (empty when it does not serve them). */
  getServiceCIDRs(): ServiceCIDRInfo[] {
    return [...this.serviceCIDRs.values()];
  }

  private allServiceCIDRs(): string[] {
    return [...this.serviceCIDRs.values()].flatMap((s) => s.cidrs);
  }

  private mine(o: KubernetesObject): boolean {
    const labels = o.metadata?.labels ?? {};
    if (labels[HEADLESS_LABEL] !== undefined) return false;
    const proxyName = labels[SERVICE_PROXY_NAME_LABEL];
    return proxyName === undefined || (this.o.serviceProxyName !== undefined && proxyName === this.o.serviceProxyName);
  }

  private reject(kind: string, o: KubernetesObject, reason: string): void {
    const what = describeObject({ ...o, kind });
    this.o.onInvalid?.(kind, what, reason);
    if (this.warned.get(what) === reason) return;
    this.warned.set(what, reason);
    this.o.log.warn('rejecting invalid object; it is not proxied', { object: what, reason });
  }

  private clearWarning(o: KubernetesObject): void {
    if (this.warned.size === 0) return;
    for (const kind of ['Service', 'EndpointSlice', 'Node']) this.warned.delete(describeObject({ ...o, kind }));
  }
}
