/**
 * End to end, as root: stale UDP conntrack entries are real, and the planned
 * deletions fix them. The DNAT rules are written by hand in the topology's
 * node namespace, with iptables or with nft per mode (the agent is not
 * involved; conntrack behaves the same under both); the client sends from a
 * fixed source port, so every datagram belongs to the same flow.
 *
 * Run per mode by conntrack-cleanup-iptables.test.ts / conntrack-cleanup-nftables.test.ts.
 */
import t from 'tap';
import { createTopology, NODE_IP, POD_UDP_PORT } from '../../../scripts/netns/topology.js';
import type { Topology } from '../../../scripts/netns/topology.js';
import { planConntrackCleanup, runConntrackCleanup } from '../../../src/agent/conntrack/index.js';
import { memoryLogger } from '../../../src/agent/log.js';
import type { Endpoint, ServicePort } from '../../../src/agent/model/types.js';
import { needsRoot, nsPrefix } from './proxy-mode.js';
import type { ProxyMode } from './proxy-mode.js';

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const CHAIN = 'KPT-CT-TEST';
const TABLE = 'kpt-ct-test';

export async function run(mode: ProxyMode): Promise<void> {
  if (!needsRoot(t, 'create network namespaces, program the kernel and delete conntrack entries')) return;
  const topo: Topology = await createTopology({
    prefix: nsPrefix('conntrack', mode),
    pods: [
      { name: 'pod-a', ip: POD_A },
      { name: 'pod-b', ip: POD_B },
    ],
  });
  t.teardown(() => topo.destroy());

  /** Replaces our test chain's rules (nat prerouting jumps to it). */
  async function dnatRules(rules: string[]): Promise<void> {
    if (mode === 'iptables') {
      const input = ['*nat', `:${CHAIN} - [0:0]`, ...rules.map((r) => `-A ${CHAIN} ${r}`), 'COMMIT', ''].join('\n');
      await topo.exec(topo.nodeNs, ['iptables-restore', '--noflush'], { input, check: true });
    } else {
      const input = [`flush chain ip ${TABLE} dnat-rules`, ...rules.map((r) => `add rule ip ${TABLE} dnat-rules ${r}`), ''].join('\n');
      await topo.exec(topo.nodeNs, ['nft', '-f', '-'], { input, check: true });
    }
  }
  if (mode === 'iptables') {
    await topo.exec(topo.nodeNs, ['iptables', '-t', 'nat', '-N', CHAIN], { check: true });
    await topo.exec(topo.nodeNs, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-j', CHAIN], { check: true });
    // A conntrack-using rule, as kube-proxy's KUBE-FORWARD has: with iptables-nft, connection
    // tracking is only on in a namespace while some rule (DNAT, -m conntrack, …) needs it, so
    // without it the "no endpoint, no DNAT rule" moment below would track nothing.
    await topo.exec(topo.nodeNs, ['iptables', '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'], { check: true });
  } else {
    // The same with nft: a nat chain (connection tracking is on while one exists) and a ct rule.
    const table = [
      `table ip ${TABLE} {`,
      '  chain dnat-rules {',
      '  }',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      '    jump dnat-rules',
      '  }',
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      '    ct state invalid drop',
      '  }',
      '}',
      '',
    ].join('\n');
    await topo.exec(topo.nodeNs, ['nft', '-f', '-'], { input: table, check: true });
  }

  const dnat = (dst: string, port: number, to: string): string =>
    mode === 'iptables'
      ? `-d ${dst}/32 -p udp -m udp --dport ${port} -j DNAT --to-destination ${to}:${POD_UDP_PORT}`
      : `ip daddr ${dst} udp dport ${port} dnat to ${to}:${POD_UDP_PORT}`;

  /** One datagram from the client, from a fixed source port (one flow per port); the pod that answered, or the error. */
  async function send(host: string, port: number, sport: number, timeoutMs = 3000): Promise<string> {
    const r = await topo.probe(topo.clientNs, { proto: 'udp', host, port, sourcePort: sport, timeoutMs });
    return r.ok ? r.pod : `error:${r.error}`;
  }

  async function conntrackList(...filter: string[]): Promise<string> {
    const r = await topo.exec(topo.nodeNs, ['conntrack', '-L', '-p', 'udp', ...filter]);
    return r.stdout;
  }

  const ep = (address: string): Endpoint => ({ address, port: POD_UDP_PORT, ready: true, serving: true, terminating: false, nodeName: 'node-1', zone: '', isLocal: true });

  function servicePort(name: string, clusterIP: string, nodePort: number, endpoints: Endpoint[]): ServicePort {
    return {
      key: `ns/${name}:dns/UDP`, displayName: `ns/${name}:dns`, namespace: 'ns', name, portName: 'dns', protocol: 'UDP', family: 'IPv4',
      type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP, port: 53, nodePort, externalIPs: [], loadBalancerIPs: [], loadBalancerSourceRanges: [],
      externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None', sessionAffinityTimeoutSeconds: 10800,
      healthCheckNodePort: 0, endpoints,
    };
  }

  const inNode = ['ip', 'netns', 'exec', topo.nodeNs, 'conntrack'];

  t.test('an endpoint removed: its UDP flows move to the remaining endpoint once the planned entries are deleted', async (t) => {
    const VIP = '10.96.0.53';
    const before = servicePort('dns', VIP, 30053, [ep(POD_A)]);
    const after = servicePort('dns', VIP, 30053, [ep(POD_B)]);

    await dnatRules([dnat(VIP, 53, POD_A), dnat(NODE_IP, 30053, POD_A)]);
    t.equal(await send(VIP, 53, 40053), 'pod-a', 'ClusterIP flow DNATed to pod-a');
    t.equal(await send(NODE_IP, 30053, 40054), 'pod-a', 'NodePort flow DNATed to pod-a');

    // "pod-a removed": the rules now only know pod-b
    await dnatRules([dnat(VIP, 53, POD_B), dnat(NODE_IP, 30053, POD_B)]);
    t.equal(await send(VIP, 53, 40055), 'pod-b', 'a new flow goes to pod-b');
    t.equal(await send(VIP, 53, 40053), 'pod-a', 'the old ClusterIP flow sticks to pod-a (stale entry): the problem');
    t.equal(await send(NODE_IP, 30053, 40054), 'pod-a', 'the old NodePort flow sticks to pod-a too');

    const plan = planConntrackCleanup(new Map([[before.key, before]]), new Map([[after.key, after]]), [after.key]);
    t.same(plan.map((d) => `${d.reason} ${d.origDst ?? '*'}:${d.origPortDst} -> ${d.replySrc}:${d.replyPortSrc}`).sort(), [
      `endpoint-gone *:30053 -> ${POD_A}:${POD_UDP_PORT}`,
      `endpoint-gone ${VIP}:53 -> ${POD_A}:${POD_UDP_PORT}`,
    ]);
    const log = memoryLogger();
    const r = await runConntrackCleanup(plan, { log, command: inNode });
    t.same(r, { ok: 2, failed: 0, deleted: 2 }, `one entry per flow deleted (${log.lines.join(' | ')})`);

    t.match(await conntrackList('--orig-port-src', '40055'), /sport=40055/, 'the flow to pod-b was left alone');
    t.equal(await send(VIP, 53, 40053), 'pod-b', 'the ClusterIP flow now reaches pod-b');
    t.equal(await send(NODE_IP, 30053, 40054), 'pod-b', 'the NodePort flow now reaches pod-b');

    const again = await runConntrackCleanup(plan, { log: memoryLogger(), command: inNode });
    t.same(again, { ok: 2, failed: 0, deleted: 0 }, 'nothing left to delete is not an error');
  });

  t.test('newly active: a flow blackholed while the service had no endpoint is freed', async (t) => {
    const VIP = '10.96.0.54';
    const before = servicePort('empty', VIP, 0, []);
    const after = servicePort('empty', VIP, 0, [ep(POD_A)]);

    // No endpoint, no rule: the datagram is routed un-NATed (and lost); conntrack remembers that.
    await dnatRules([]);
    t.equal(await send(VIP, 53, 40060, 600), 'error:timeout', 'no endpoint: no answer');
    t.match(await conntrackList('--orig-port-src', '40060'), /dst=10\.96\.0\.54 .*src=10\.96\.0\.54/, 'an un-NATed entry exists');

    await dnatRules([dnat(VIP, 53, POD_A)]);
    t.equal(await send(VIP, 53, 40061), 'pod-a', 'a new flow is DNATed');
    t.equal(await send(VIP, 53, 40060, 600), 'error:timeout', 'the old flow stays blackholed (stale entry): the problem');

    const plan = planConntrackCleanup(new Map([[before.key, before]]), new Map([[after.key, after]]), [after.key]);
    t.same(plan.map((d) => `${d.reason} ${d.origDst}:${d.origPortDst} ${d.replySrc ?? 'all'}`), [`newly-active ${VIP}:53 all`]);
    const r = await runConntrackCleanup(plan, { log: memoryLogger(), command: inNode });
    t.equal(r.failed, 0);
    t.ok(r.deleted >= 1, `entries deleted: ${r.deleted}`);
    t.equal(await send(VIP, 53, 40060), 'pod-a', 'the old flow now reaches pod-a');
  });
}
