/**
 * A quick measurement of the nftables backend against the real kernel, in a
 * throwaway network namespace (created and deleted here; never the host's):
 * a full sync of N ClusterIP services × M endpoints into an empty table, a
 * second full sync over it (the periodic resync), and partial syncs of one
 * endpoint replaced in one service. Prints bytes and times as JSON lines.
 *
 *   sudo node dist/src/backends/nftables/measure.js SERVICES ENDPOINTS [PARTIALS=5] [PAUSE_MS=1000]
 */
import { execa } from 'execa';
import { ClusterStore } from '../../agent/model/store.js';
import type { EndpointSlice, Service } from '../../agent/model/types.js';
import { NftablesBackend } from './backend.js';
import { execApplier } from './nft/applier.js';

function svc(i: number): Service {
  return {
    namespace: 'bench',
    name: `svc-${i}`,
    type: 'ClusterIP',
    clusterIPs: [`10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    sessionAffinity: 'None',
    sessionAffinityTimeoutSeconds: 10800,
    healthCheckNodePort: 0,
    ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 0, targetPort: 8080 }],
  };
}

/** Endpoint j (generation g) of service i: unique pod IPs in 10.128.0.0/9. */
function podIP(i: number, j: number, g = 0): string {
  const n = i * 64 + j + g * 16;
  return `10.${128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
}

function slices(i: number, m: number, g = 0): EndpointSlice {
  return {
    namespace: 'bench',
    name: `svc-${i}-a`,
    serviceName: `svc-${i}`,
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: Array.from({ length: m }, (_, j) => ({
      addresses: [podIP(i, j, j === 0 ? g : 0)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${j}`,
      zone: '',
      hints: { forZones: [], forNodes: [] },
    })),
  };
}

async function main(): Promise<void> {
  const services = Number(process.argv[2] ?? 1000);
  const endpoints = Number(process.argv[3] ?? 10);
  const repeats = Number(process.argv[4] ?? 5);
  /** Pause between partial syncs (as a sync runner's min period would leave). */
  const pauseMs = Number(process.argv[5] ?? 1000);
  const ns = `kpt-nft-measure-${process.pid}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    const backend = new NftablesBackend(execApplier({ prefix: ['ip', 'netns', 'exec', ns] }), { masqueradeAll: false, masqueradeBit: 14, clusterCIDR: '10.128.0.0/9', nodeName: 'node-0' }, { deferStaleChains: false });
    const store = new ClusterStore('node-0');
    for (let i = 0; i < services; i++) {
      store.upsertService(svc(i));
      store.upsertSlice(slices(i, endpoints));
    }
    const report = (what: string, r: { bytes: number; rules: number; toolMs: number }, wallMs: number): void => {
      console.log(JSON.stringify({ what, services, endpoints, bytes: r.bytes, ops: r.rules, nftMs: Math.round(r.toolMs), wallMs: Math.round(wallMs) }));
    };
    let generation = 0;
    const partials = async (label: string): Promise<void> => {
      for (let k = 1; k <= repeats; k++) {
        const i = (++generation * 7919) % services;
        store.upsertSlice(slices(i, endpoints, generation));
        const s = store.snapshot();
        const start = performance.now();
        report(`partial sync, one endpoint replaced (${label})`, await backend.sync(s.snapshot, s.changes, { full: false }), performance.now() - start);
        store.commit(s.changes);
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    };
    let s = store.snapshot();
    let start = performance.now();
    report('full sync, empty table', await backend.sync(s.snapshot, s.changes, { full: true }), performance.now() - start);
    store.commit(s.changes);
    await partials('after the first full sync');
    // The parts of a full sync outside nft -f: listing the table's object names, rendering, planning.
    const applier = execApplier({ prefix: ['ip', 'netns', 'exec', ns] });
    start = performance.now();
    const listing = await applier.list('ip', 'kube-proxy');
    console.log(JSON.stringify({ what: 'list the table (chains, sets, maps: names only)', chains: listing.chains.size, ms: Math.round(performance.now() - start) }));
    s = store.snapshot();
    start = performance.now();
    const planned = await backend.plan(s.snapshot);
    console.log(JSON.stringify({ what: 'plan a full sync (list + render + plan + text)', bytes: planned.text.length, ms: Math.round(performance.now() - start) }));
    s = store.snapshot();
    start = performance.now();
    report('full sync, over the same table', await backend.sync(s.snapshot, s.changes, { full: true }), performance.now() - start);
    store.commit(s.changes);
    await partials('right after a full resync');
    // Element-only changes: a service without endpoints appears (cluster-ips + no-endpoint-services elements).
    for (let k = 1; k <= repeats; k++) {
      store.upsertService(svc(services + k));
      const s = store.snapshot();
      const start = performance.now();
      report('partial sync, a service without endpoints added (elements only)', await backend.sync(s.snapshot, s.changes, { full: false }), performance.now() - start);
      store.commit(s.changes);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    const listed = await execa('ip', ['netns', 'exec', ns, 'nft', '-j', '-t', 'list', 'chains', 'ip']);
    console.log(JSON.stringify({ what: 'chains in the table', count: (listed.stdout.match(/"chain":/g) ?? []).length }));
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  }
}

await main();
