/**
 * End to end, as root: the proxy features beyond plain load balancing,
 * each proved with real packets through the built agent (dist/), which runs
 * in a dual-stack node namespace (scripts/netns/topology.ts) in either
 * proxy mode and reads manifests this suite writes. Upstream kube-proxy's
 * behaviour is the reference, and is the same in both modes here:
 *
 * - sessionAffinity ClientIP (iptables `-m recent`, nftables affinity sets):
 *   one client sticks to one endpoint;
 * - externalTrafficPolicy Local: outside traffic reaches only this node's
 *   endpoints, unmasqueraded; pods and the node itself still use every
 *   endpoint for the external addresses (upstream's KUBE-EXT short-circuit);
 * - loadBalancerSourceRanges: other sources are dropped at the LoadBalancer IP
 *   (not at the NodePort);
 * - stale UDP conntrack entries are deleted when an endpoint goes away, so a
 *   long-lived UDP flow (same source port) moves to the new endpoint;
 * - a dual-stack Service's IPv6 ClusterIP works from a pod and from the node;
 * - (extra) internalTrafficPolicy Local: only this node's endpoints; with none
 *   here, traffic is dropped.
 *
 * Pods: pod-a, pod-b, pod-c on node-1 (endpoints), pod-r claiming node-2
 * (EndpointSlice nodeName; physically wired like the others, so wrong rules
 * show as it answering), pod-z (a client pod, endpoint of nothing).
 *
 * Run per mode by agent-features-iptables.test.ts / agent-features-nftables.test.ts.
 */
import t from 'tap';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CLIENT_IP,
  CLIENT_IP2,
  createTopology,
  NODE_IP,
  NODE_POD_SIDE_IP,
  NODE_POD_SIDE_IP6,
  POD_TCP_PORT,
  POD_UDP_PORT,
} from '../../../scripts/netns/topology.js';
import type { ProbeOptions, ProbeResult, Topology, TopologyPod } from '../../../scripts/netns/topology.js';
import { startAgentInNode } from '../../../scripts/netns/agent.js';
import { dnatTargets, mentions, modeArgs, needsRoot, nsPrefix, svcPort, waitForRules as waitForModeRules } from './proxy-mode.js';
import type { Family as RulesFamily, ProxyMode } from './proxy-mode.js';

const NS = 'feat';

export async function run(mode: ProxyMode): Promise<void> {
  if (!needsRoot(t, `create network namespaces and program ${mode}`)) return;
  const topo: Topology = await createTopology({
    prefix: nsPrefix('features', mode),
    ipv6: true,
    pods: [
      { name: 'pod-a', ip: '10.244.1.10' },
      { name: 'pod-b', ip: '10.244.1.11' },
      { name: 'pod-c', ip: '10.244.1.12' },
      { name: 'pod-r', ip: '10.244.2.10', nodeName: 'node-2' },
      { name: 'pod-z', ip: '10.244.1.50' },
    ],
  });
  t.teardown(() => topo.destroy());
  const [podA, podB, podC, podR, podZ] = ['pod-a', 'pod-b', 'pod-c', 'pod-r', 'pod-z'].map((n) => topo.pod(n)) as [
    TopologyPod,
    TopologyPod,
    TopologyPod,
    TopologyPod,
    TopologyPod,
  ];

  // ---------------------------------------------------------------------------
  // manifests

  type Obj = Record<string, unknown>;
  type Family = 'IPv4' | 'IPv6';
  interface PortSpec {
    name: string;
    protocol: 'TCP' | 'UDP';
    port: number;
    nodePort?: number;
  }

  function service(name: string, spec: Obj, lbIngress?: string[]): Obj {
    return {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: NS, name },
      spec,
      ...(lbIngress ? { status: { loadBalancer: { ingress: lbIngress.map((ip) => ({ ip })) } } } : {}),
    };
  }

  function servicePorts(ports: PortSpec[]): Obj[] {
    return ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      port: p.port,
      targetPort: p.protocol === 'TCP' ? POD_TCP_PORT : POD_UDP_PORT,
      ...(p.nodePort ? { nodePort: p.nodePort } : {}),
    }));
  }

  function slice(svc: string, family: Family, ports: PortSpec[], pods: TopologyPod[]): Obj {
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace: NS, name: `${svc}-${family.toLowerCase()}`, labels: { 'kubernetes.io/service-name': svc } },
      addressType: family,
      ports: ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.protocol === 'TCP' ? POD_TCP_PORT : POD_UDP_PORT })),
      endpoints: pods.map((p) => ({
        addresses: [family === 'IPv4' ? p.ip : p.ip6!],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: p.nodeName,
        targetRef: { kind: 'Pod', namespace: NS, name: p.name },
      })),
    };
  }

  const HTTP: PortSpec = { name: 'http', protocol: 'TCP', port: 80 };
  const DNS: PortSpec = { name: 'dns', protocol: 'UDP', port: 53 };

  const AFFINITY_IP = '10.96.1.1';
  const SPREAD_IP = '10.96.1.2';
  const LOCAL_IP = '10.96.1.3';
  const LOCAL_NODEPORT = 30081;
  const LOCAL_LB = '198.51.100.31';
  const RANGES_IP = '10.96.1.4';
  const RANGES_NODEPORT = 30082;
  const RANGES_LB = '198.51.100.32';
  const UDPFLOW_IP = '10.96.1.5';
  const DUAL_IP = '10.96.1.6';
  const ITP_LOCAL_IP = '10.96.1.7';
  const ITP_REMOTE_IP = '10.96.1.8';
  const DUAL_IP6 = 'fd00:10:96::6';

  const udpFlowObjects = (endpoint: TopologyPod): Obj[] => [
    service('udp-flow', { type: 'ClusterIP', clusterIP: UDPFLOW_IP, clusterIPs: [UDPFLOW_IP], ports: servicePorts([DNS]) }),
    slice('udp-flow', 'IPv4', [DNS], [endpoint]),
  ];

  const files: Record<string, Obj[]> = {
    'node.json': [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-1', labels: { 'kubernetes.io/hostname': 'node-1', 'topology.kubernetes.io/zone': 'zone-a' } },
        spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
        status: {
          addresses: [
            { type: 'InternalIP', address: NODE_IP },
            { type: 'InternalIP', address: topo.nodeIp6! },
          ],
        },
      },
    ],
    'affinity.json': [
      service('affinity', {
        type: 'ClusterIP',
        clusterIP: AFFINITY_IP,
        clusterIPs: [AFFINITY_IP],
        ports: servicePorts([HTTP]),
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      }),
      slice('affinity', 'IPv4', [HTTP], [podA, podB, podC]),
      service('spread', { type: 'ClusterIP', clusterIP: SPREAD_IP, clusterIPs: [SPREAD_IP], ports: servicePorts([HTTP]) }),
      slice('spread', 'IPv4', [HTTP], [podA, podB, podC]),
    ],
    'local.json': [
      service(
        'local',
        {
          type: 'LoadBalancer',
          clusterIP: LOCAL_IP,
          clusterIPs: [LOCAL_IP],
          ports: servicePorts([{ ...HTTP, nodePort: LOCAL_NODEPORT }]),
          externalTrafficPolicy: 'Local',
          healthCheckNodePort: 32081,
        },
        [LOCAL_LB],
      ),
      slice('local', 'IPv4', [HTTP], [podA, podR]),
    ],
    'ranges.json': [
      service(
        'ranges',
        {
          type: 'LoadBalancer',
          clusterIP: RANGES_IP,
          clusterIPs: [RANGES_IP],
          ports: servicePorts([{ ...HTTP, nodePort: RANGES_NODEPORT }]),
          loadBalancerSourceRanges: ['192.0.2.0/24', `${CLIENT_IP}/32`],
        },
        [RANGES_LB],
      ),
      slice('ranges', 'IPv4', [HTTP], [podA, podB]),
    ],
    'udp-flow.json': udpFlowObjects(podA),
    'itp.json': [
      service('itp-local', { type: 'ClusterIP', clusterIP: ITP_LOCAL_IP, clusterIPs: [ITP_LOCAL_IP], ports: servicePorts([HTTP]), internalTrafficPolicy: 'Local' }),
      slice('itp-local', 'IPv4', [HTTP], [podA, podR]),
      service('itp-remote', { type: 'ClusterIP', clusterIP: ITP_REMOTE_IP, clusterIPs: [ITP_REMOTE_IP], ports: servicePorts([HTTP]), internalTrafficPolicy: 'Local' }),
      slice('itp-remote', 'IPv4', [HTTP], [podR]),
    ],
    'dual.json': [
      service('dual', {
        type: 'ClusterIP',
        ipFamilyPolicy: 'RequireDualStack',
        ipFamilies: ['IPv4', 'IPv6'],
        clusterIP: DUAL_IP,
        clusterIPs: [DUAL_IP, DUAL_IP6],
        ports: servicePorts([HTTP, DNS]),
      }),
      slice('dual', 'IPv4', [HTTP, DNS], [podA, podB]),
      slice('dual', 'IPv6', [HTTP, DNS], [podA, podB]),
    ],
  };

  const manifests = t.testdir({});
  /** Writes a manifest file atomically (the agent ignores dot files), as a v1 List. */
  async function writeManifest(name: string, items: Obj[]): Promise<void> {
    const tmp = join(manifests, `.${name}.tmp`);
    await writeFile(tmp, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1));
    await rename(tmp, join(manifests, name));
  }
  for (const [name, items] of Object.entries(files)) await writeManifest(name, items);

  // ---------------------------------------------------------------------------
  // agent and helpers

  const agent = startAgentInNode(topo, [
    ...modeArgs(mode),
    `--manifests=${manifests}`,
    '--hostname-override=node-1',
    '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56',
    '--iptables-min-sync-period=100ms',
    '--healthz-bind-address=',
    '--metrics-bind-address=',
  ]);
  t.teardown(() => agent.stop('SIGKILL'));

  const waitForRules = (pred: (rules: string) => boolean, what: string, family: RulesFamily = 'IPv4'): Promise<void> =>
    waitForModeRules(topo, mode, pred, what, { family, timeoutMs: 8000, log: () => agent.lines });

  await agent.waitForSyncs(1, 30_000);
  await waitForRules(
    (s) => ['affinity:http', 'spread:http', 'local:http', 'ranges:http', 'udp-flow:dns/UDP', 'dual:http', 'itp-local:http'].every((p) => mentions(s, mode, svcPort(`${NS}/${p}`))),
    'every IPv4 service',
  );

  type ProbeArgs = Omit<ProbeOptions, 'timeoutMs'> & { timeoutMs?: number };
  /** Probes n times (sequentially, each a new connection / socket) and tallies the answers. */
  async function probeMany(ns: string, opts: ProbeArgs, n: number): Promise<{ pods: string[]; froms: string[]; failures: ProbeResult[]; results: ProbeResult[] }> {
    const results: ProbeResult[] = [];
    for (let i = 0; i < n; i++) results.push(await topo.probe(ns, { timeoutMs: 4000, ...opts }));
    const ok = results.filter((r): r is Extract<ProbeResult, { ok: true }> => r.ok);
    return {
      pods: [...new Set(ok.map((r) => r.pod))].sort(),
      froms: [...new Set(ok.map((r) => r.from))].sort(),
      failures: results.filter((r) => !r.ok),
      results,
    };
  }

  const brief = (r: { pods: string[]; froms: string[]; failures: ProbeResult[] }): string =>
    `pods=${JSON.stringify(r.pods)} from=${JSON.stringify(r.froms)} failures=${JSON.stringify(r.failures.slice(0, 3))}`;

  // ---------------------------------------------------------------------------

  t.test('sessionAffinity ClientIP: a client sticks to one endpoint; without affinity requests spread', async (t) => {
    const spread = await probeMany(podZ.ns, { proto: 'tcp', host: SPREAD_IP, port: 80 }, 30);
    t.equal(spread.failures.length, 0, `spread: every request answered; ${brief(spread)}`);
    t.ok(spread.pods.length >= 2, `no affinity: requests spread over the endpoints; ${brief(spread)}`);

    // From a pod (its own address), from the outside client's two source addresses
    // (masqueraded to the pods, but the affinity is keyed on the original source).
    const vantage: Array<[string, string, ProbeArgs]> = [
      ['pod-z', podZ.ns, { proto: 'tcp', host: AFFINITY_IP, port: 80 }],
      [CLIENT_IP, topo.clientNs, { proto: 'tcp', host: AFFINITY_IP, port: 80 }],
      [CLIENT_IP2, topo.clientNs, { proto: 'tcp', host: AFFINITY_IP, port: 80, bind: CLIENT_IP2 }],
    ];
    for (const [label, ns, opts] of vantage) {
      const r = await probeMany(ns, opts, 30);
      t.equal(r.failures.length, 0, `${label}: every request answered; ${brief(r)}`);
      t.equal(r.pods.length, 1, `${label}: 30 connections all answered by one pod; ${brief(r)}`);
      t.ok(r.pods.every((p) => ['pod-a', 'pod-b', 'pod-c'].includes(p)), `${label}: an endpoint answered`);
    }
  });

  t.test('externalTrafficPolicy Local: from outside only the local endpoint answers, and sees the client address', async (t) => {
    for (const [label, host, port] of [
      ['NodePort', NODE_IP, LOCAL_NODEPORT],
      ['LoadBalancer IP', LOCAL_LB, 80],
    ] as const) {
      const r = await probeMany(topo.clientNs, { proto: 'tcp', host, port }, 16);
      t.equal(r.failures.length, 0, `${label}: every request answered; ${brief(r)}`);
      t.same(r.pods, ['pod-a'], `${label}: only the node-1 endpoint (pod-r is on node-2); ${brief(r)}`);
      t.same(r.froms, [CLIENT_IP], `${label}: the pod sees the client's own address (not masqueraded); ${brief(r)}`);
      const second = await probeMany(topo.clientNs, { proto: 'tcp', host, port, bind: CLIENT_IP2 }, 4);
      t.same(second.froms, [CLIENT_IP2], `${label}: from the second source address too; ${brief(second)}`);
    }
  });

  t.test('externalTrafficPolicy Local: pods and the node reaching the external addresses use every endpoint', async (t) => {
    // Upstream's KUBE-EXT chain sends pod traffic (-s clusterCIDR) and node-local
    // traffic (--src-type LOCAL, masqueraded) to the cluster-wide KUBE-SVC chain.
    const fromPod = await probeMany(podZ.ns, { proto: 'tcp', host: LOCAL_LB, port: 80 }, 24);
    t.equal(fromPod.failures.length, 0, `pod -> LoadBalancer IP answered; ${brief(fromPod)}`);
    t.same(fromPod.pods, ['pod-a', 'pod-r'], `pod -> LoadBalancer IP reaches both endpoints; ${brief(fromPod)}`);
    t.same(fromPod.froms, [podZ.ip], `pod traffic is not masqueraded; ${brief(fromPod)}`);
    const fromNode = await probeMany(topo.nodeNs, { proto: 'tcp', host: LOCAL_LB, port: 80 }, 24);
    t.equal(fromNode.failures.length, 0, `node -> LoadBalancer IP answered; ${brief(fromNode)}`);
    t.same(fromNode.pods, ['pod-a', 'pod-r'], `node -> LoadBalancer IP reaches both endpoints; ${brief(fromNode)}`);
    t.same(fromNode.froms, [NODE_POD_SIDE_IP], `node traffic is masqueraded; ${brief(fromNode)}`);
    const clusterIP = await probeMany(podZ.ns, { proto: 'tcp', host: LOCAL_IP, port: 80 }, 24);
    t.same(clusterIP.pods, ['pod-a', 'pod-r'], `the ClusterIP (internalTrafficPolicy Cluster) reaches both; ${brief(clusterIP)}`);
  });

  t.test('loadBalancerSourceRanges: an allowed source reaches the LoadBalancer IP, a denied one is dropped', async (t) => {
    const allowed = await probeMany(topo.clientNs, { proto: 'tcp', host: RANGES_LB, port: 80 }, 8);
    t.equal(allowed.failures.length, 0, `from ${CLIENT_IP} (in the ranges): answered; ${brief(allowed)}`);
    t.same(allowed.pods, ['pod-a', 'pod-b'], `load balanced; ${brief(allowed)}`);
    const allowedBound = await topo.probe(topo.clientNs, { proto: 'tcp', host: RANGES_LB, port: 80, bind: CLIENT_IP, timeoutMs: 1500 });
    t.equal(allowedBound.ok, true, `explicitly bound to ${CLIENT_IP}: ${JSON.stringify(allowedBound)}`);

    const denied = await Promise.all(
      [0, 1, 2].map(() => topo.probe(topo.clientNs, { proto: 'tcp', host: RANGES_LB, port: 80, bind: CLIENT_IP2, timeoutMs: 1500 })),
    );
    for (const r of denied) {
      t.match(r, { ok: false, error: 'timeout', phase: 'connect' }, `from ${CLIENT_IP2} (not in the ranges): dropped, no answer: ${JSON.stringify(r)}`);
    }
    // As upstream: the ranges guard the LoadBalancer IP only; the NodePort and the ClusterIP stay open.
    const nodePort = await probeMany(topo.clientNs, { proto: 'tcp', host: NODE_IP, port: RANGES_NODEPORT, bind: CLIENT_IP2 }, 4);
    t.equal(nodePort.failures.length, 0, `NodePort from ${CLIENT_IP2} still answered; ${brief(nodePort)}`);
    const clusterIP = await probeMany(podZ.ns, { proto: 'tcp', host: RANGES_IP, port: 80 }, 4);
    t.equal(clusterIP.failures.length, 0, `ClusterIP from a pod answered; ${brief(clusterIP)}`);
  });

  t.test('UDP: a flow to a ClusterIP moves to the new endpoint right after the sync (stale conntrack entries deleted)', async (t) => {
    const SPORT = 45053;
    const flow = { proto: 'udp' as const, host: UDPFLOW_IP, port: 53, sourcePort: SPORT, timeoutMs: 2000 };
    for (let i = 0; i < 3; i++) {
      const r = await topo.probe(podZ.ns, flow);
      t.match(r, { ok: true, pod: 'pod-a', from: podZ.ip, fromPort: SPORT }, `before: the flow reaches pod-a: ${JSON.stringify(r)}`);
    }
    const ct = await topo.exec(topo.nodeNs, ['conntrack', '-L', '-p', 'udp', '--orig-dst', UDPFLOW_IP, '--orig-port-src', String(SPORT)]);
    t.match(ct.stdout, podA.ip, 'the flow has a conntrack entry DNATed to pod-a');

    // Keep the flow busy (a datagram every 100 ms), as a real client would: without the
    // cleanup the entry never expires and keeps pointing at pod-a.
    let sending = true;
    const answers: Array<{ at: number; pod: string }> = [];
    const sender = (async () => {
      while (sending) {
        const r = await topo.probe(podZ.ns, flow);
        answers.push({ at: Date.now(), pod: r.ok ? r.pod : `error:${r.error}` });
        await sleep(100);
      }
    })();
    try {
      await sleep(300);
      // pod-a leaves the service (its pod keeps running and answering), pod-b joins.
      await writeManifest('udp-flow.json', udpFlowObjects(podB));
      await waitForRules((s) => dnatTargets(s, mode, svcPort(`${NS}/udp-flow:dns/UDP`)).join() === `${podB.ip}:${POD_UDP_PORT}`, 'udp-flow endpoint pod-a -> pod-b');
      const synced = Date.now();
      // "Right after the sync": within 5 s of the new rules being in the kernel (without the
      // cleanup the busy flow would stay on pod-a for as long as it keeps sending; 5 s leaves
      // room for a loaded CI machine).
      while (Date.now() - synced < 5000 && !answers.some((a) => a.at > synced && a.pod === 'pod-b')) await sleep(50);
      await sleep(500);
      sending = false;
      await sender;
      const after = answers.filter((a) => a.at > synced);
      const firstB = after.findIndex((a) => a.pod === 'pod-b');
      t.ok(firstB >= 0 && after[firstB]!.at - synced < 5000, `the flow reached pod-b within 5 s of the sync; answers after the sync: ${JSON.stringify(after.map((a) => `${a.at - synced}ms:${a.pod}`))}`);
      if (firstB >= 0) t.same([...new Set(after.slice(firstB).map((a) => a.pod))], ['pod-b'], 'and stays there');
      const r = await topo.probe(podZ.ns, flow);
      t.match(r, { ok: true, pod: 'pod-b', fromPort: SPORT }, `same source port, now pod-b: ${JSON.stringify(r)}`);
    } finally {
      sending = false;
      await sender;
    }
  });

  t.test('IPv6: a dual-stack service answers on its IPv6 ClusterIP from a pod and from the node', async (t) => {
    await waitForRules((s) => dnatTargets(s, mode, svcPort(`${NS}/dual:http`)).length === 2, 'dual-stack service in the IPv6 rules', 'IPv6');
    const fromPod = await probeMany(podZ.ns, { proto: 'tcp', host: DUAL_IP6, port: 80 }, 16);
    t.equal(fromPod.failures.length, 0, `pod -> [${DUAL_IP6}]:80 answered; ${brief(fromPod)}`);
    t.same(fromPod.pods, ['pod-a', 'pod-b'], `load balanced over both IPv6 endpoints; ${brief(fromPod)}`);
    t.same(fromPod.froms, [podZ.ip6], `pod source kept (IPv6 cluster CIDR); ${brief(fromPod)}`);
    const udp = await probeMany(podZ.ns, { proto: 'udp', host: DUAL_IP6, port: 53 }, 6);
    t.equal(udp.failures.length, 0, `pod -> [${DUAL_IP6}]:53/udp answered; ${brief(udp)}`);
    t.ok(udp.pods.every((p) => p === 'pod-a' || p === 'pod-b') && udp.pods.length > 0, `by an endpoint; ${brief(udp)}`);

    const fromNode = await probeMany(topo.nodeNs, { proto: 'tcp', host: DUAL_IP6, port: 80 }, 16);
    t.equal(fromNode.failures.length, 0, `node -> [${DUAL_IP6}]:80 answered; ${brief(fromNode)}`);
    t.same(fromNode.pods, ['pod-a', 'pod-b'], `load balanced; ${brief(fromNode)}`);
    t.same(fromNode.froms, [NODE_POD_SIDE_IP6], `node traffic is masqueraded (its source is outside the cluster CIDR); ${brief(fromNode)}`);

    const v4 = await probeMany(podZ.ns, { proto: 'tcp', host: DUAL_IP, port: 80 }, 8);
    t.equal(v4.failures.length, 0, `the IPv4 ClusterIP of the same service works too; ${brief(v4)}`);
    t.ok(fromPod.pods.every((p) => p !== 'pod-c' && p !== 'pod-r'), 'only the service endpoints answer');
  });

  t.test('(extra) internalTrafficPolicy Local: in-cluster clients reach only this node\'s endpoints; none here: dropped', async (t) => {
    const local = await probeMany(podZ.ns, { proto: 'tcp', host: ITP_LOCAL_IP, port: 80 }, 16);
    t.equal(local.failures.length, 0, `answered; ${brief(local)}`);
    t.same(local.pods, ['pod-a'], `only the node-1 endpoint (pod-r is on node-2); ${brief(local)}`);
    // Upstream: endpoints exist, but none on this node -> DROP (not REJECT).
    const [fromPod, fromNode] = await Promise.all(
      [podZ.ns, topo.nodeNs].map((ns) => topo.probe(ns, { proto: 'tcp', host: ITP_REMOTE_IP, port: 80, timeoutMs: 1500 })),
    );
    t.match(fromPod, { ok: false, error: 'timeout', phase: 'connect' }, `pod -> service with only remote endpoints: dropped: ${JSON.stringify(fromPod)}`);
    t.match(fromNode, { ok: false, error: 'timeout', phase: 'connect' }, `node -> service with only remote endpoints: dropped: ${JSON.stringify(fromNode)}`);
  });

  t.test('the agent is still running', async (t) => {
    t.equal(await Promise.race([agent.exited.then(() => 'exited'), sleep(10).then(() => 'running')]), 'running', agent.lines.slice(-20).join('\n'));
  });
}
