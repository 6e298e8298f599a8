// End-to-end check of the network-namespace harness itself (no kube-proxy involved):
// builds a 2-pod topology, proves plain routing works, then hand-written iptables
// rules in the node namespace (DNAT, hairpin MASQUERADE, REJECT, DROP) behave as
// the kube-proxy e2e tests will expect. Needs root.
import t from 'tap';
import { performance } from 'node:perf_hooks';
import {
  CLIENT_IP2,
  CLIENT_IP6,
  CLIENT_IP6_2,
  createTopology,
  NODE_IP6,
  NODE_POD_SIDE_IP6,
  podIp6,
  destroyAllWithPrefix,
  listNamespacesWithPrefix,
  nodeCmd,
  pidsInNamespaces,
  resolveScript,
  type ProbeResult,
  type Topology,
} from '../../scripts/netns/topology.js';

const POD_A = { name: 'pod-a', ip: '10.244.1.10' };
const POD_B = { name: 'pod-b', ip: '10.244.1.11' };
const VIP = '198.51.100.10';

function show(r: ProbeResult): string {
  return JSON.stringify(r);
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root for network namespaces (run as root to exercise the netns harness)');
} else {
  const prefix = `kpt-topo-${process.pid}`;
  let topo: Topology;

  t.before(async () => {
    const t0 = performance.now();
    topo = await createTopology({ prefix, pods: [POD_A, POD_B] });
    t.comment(`createTopology (2 pods, servers listening): ${Math.round(performance.now() - t0)} ms`);
  });
  t.teardown(async () => {
    if (topo) await topo.destroy();
    await destroyAllWithPrefix(prefix);
  });

  const iptables = async (table: string, ...args: string[]): Promise<void> => {
    await topo.exec(topo.nodeNs, ['iptables', '-w', '-t', table, ...args], { check: true });
  };

  t.test('layout', async (t) => {
    t.same(listNamespacesWithPrefix(prefix), [...topo.namespaces].sort(), 'all namespaces carry the prefix');
    t.equal(topo.nodeIp, '203.0.113.1');
    t.equal(topo.clientIp, '203.0.113.2');
    const fwd = await topo.exec(topo.nodeNs, ['sysctl', '-n', 'net.ipv4.ip_forward']);
    t.equal(fwd.stdout.trim(), '1', 'node forwards');
    const rl = await topo.exec(topo.nodeNs, ['sysctl', '-n', 'net.ipv4.conf.all.route_localnet']);
    t.equal(rl.stdout.trim(), '0', 'route_localnet left at default');
    const nat = await topo.exec(topo.nodeNs, ['iptables', '-t', 'nat', '-S']);
    t.notMatch(nat.stdout, /DNAT|MASQUERADE/, 'node starts without NAT rules');
    t.match(topo.describe(), topo.nodeNs);
  });

  t.test('node reaches each pod directly (tcp + udp)', async (t) => {
    for (const p of [POD_A, POD_B]) {
      for (const proto of ['tcp', 'udp'] as const) {
        const r = await topo.probe(topo.nodeNs, { proto, host: p.ip, port: proto === 'tcp' ? 8080 : 5353 });
        t.ok(r.ok, `node -> ${p.name} ${proto}: ${show(r)}`);
        if (r.ok) {
          t.equal(r.pod, p.name, `answered by ${p.name}`);
          t.equal(r.from, topo.nodePodSideIp, 'node talks to pods from its pod-side address');
        }
      }
    }
  });

  t.test('pod reaches the other pod, source preserved', async (t) => {
    const a = topo.pod('pod-a');
    for (const proto of ['tcp', 'udp'] as const) {
      const r = await topo.probe(a.ns, { proto, host: POD_B.ip, port: proto === 'tcp' ? 8080 : 5353 });
      t.ok(r.ok, `pod-a -> pod-b ${proto}: ${show(r)}`);
      if (r.ok) {
        t.equal(r.pod, 'pod-b');
        t.equal(r.from, POD_A.ip);
      }
    }
  });

  t.test('client reaches the node; closed ports are refused quickly', async (t) => {
    const server = await resolveScript('podserver');
    const sp = topo.spawn(topo.nodeNs, nodeCmd(server, '--name', 'the-node', '--tcp-port', '9000', '--udp-port', '9001'));
    // wait for it to listen
    let r: ProbeResult = { ok: false, error: 'not tried', ms: 0 };
    for (let i = 0; i < 100; i++) {
      r = await topo.probe(topo.clientNs, { proto: 'tcp', host: topo.nodeIp, port: 9000 });
      if (r.ok) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    t.ok(r.ok, `client -> node:9000 ${show(r)}`);
    if (r.ok) {
      t.equal(r.pod, 'the-node');
      t.equal(r.from, topo.clientIp);
    }
    // the second outside source address: never the default, used when bound
    t.same(topo.extraClientIps, [CLIENT_IP2], 'IPv4-only topology: one extra client address');
    for (const proto of ['tcp', 'udp'] as const) {
      const port = proto === 'tcp' ? 9000 : 9001;
      const bound = await topo.probe(topo.clientNs, { proto, host: topo.nodeIp, port, bind: CLIENT_IP2 });
      t.match(bound, { ok: true, pod: 'the-node', from: CLIENT_IP2 }, `${proto} bound to ${CLIENT_IP2}: ${show(bound)}`);
      const dflt = await topo.probe(topo.clientNs, { proto, host: topo.nodeIp, port });
      t.match(dflt, { ok: true, from: topo.clientIp }, `${proto} default source unchanged: ${show(dflt)}`);
      // a fixed source port (one UDP flow over several probes)
      const a = await topo.probe(topo.clientNs, { proto, host: topo.nodeIp, port, sourcePort: 41000 + (proto === 'tcp' ? 0 : 1) });
      const b = await topo.probe(topo.clientNs, { proto, host: topo.nodeIp, port, sourcePort: 41000 + (proto === 'tcp' ? 0 : 1) });
      t.match(a, { ok: true, fromPort: 41000 + (proto === 'tcp' ? 0 : 1) }, `${proto} sourcePort: ${show(a)}`);
      t.match(b, { ok: true, fromPort: 41000 + (proto === 'tcp' ? 0 : 1) }, `${proto} sourcePort again: ${show(b)}`);
    }
    const tcp = await topo.probe(topo.clientNs, { proto: 'tcp', host: topo.nodeIp, port: 9 , timeoutMs: 2000 });
    t.match(tcp, { ok: false, error: 'refused' }, `tcp closed port: ${show(tcp)}`);
    t.ok(tcp.ms < 500, `refused quickly (${tcp.ms} ms)`);
    const udp = await topo.probe(topo.clientNs, { proto: 'udp', host: topo.nodeIp, port: 9, timeoutMs: 2000 });
    t.match(udp, { ok: false, error: 'refused' }, `udp closed port: ${show(udp)}`);
    t.ok(udp.ms < 500, `refused quickly (${udp.ms} ms)`);
    const noRule = await topo.probe(topo.clientNs, { proto: 'tcp', host: VIP, port: 80, timeoutMs: 500 });
    t.match(noRule, { ok: false, error: 'timeout' }, 'an external IP nobody handles just times out');
    sp.kill('SIGTERM');
    await sp;
  });

  t.test('DNAT, hairpin masquerade, REJECT and DROP in the node namespace', async (t) => {
    const a = topo.pod('pod-a');
    const b = topo.pod('pod-b');
    for (const chain of ['PREROUTING', 'OUTPUT']) {
      await iptables('nat', '-A', chain, '-d', VIP, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${POD_A.ip}:8080`);
      await iptables('nat', '-A', chain, '-d', VIP, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `${POD_A.ip}:5353`);
    }

    for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
      const c = await topo.probe(topo.clientNs, { proto, host: VIP, port });
      t.ok(c.ok, `client -> ${VIP}:${port}/${proto}: ${show(c)}`);
      if (c.ok) {
        t.equal(c.pod, 'pod-a');
        t.equal(c.from, topo.clientIp, 'client source address preserved');
      }
      const n = await topo.probe(topo.nodeNs, { proto, host: VIP, port });
      t.ok(n.ok, `node -> ${VIP}:${port}/${proto} (nat OUTPUT): ${show(n)}`);
      if (n.ok) t.equal(n.pod, 'pod-a');
      const pb = await topo.probe(b.ns, { proto, host: VIP, port });
      t.ok(pb.ok, `pod-b -> ${VIP}:${port}/${proto}: ${show(pb)}`);
      if (pb.ok) t.equal(pb.from, POD_B.ip, 'pod source preserved');
    }

    // Hairpin: pod-a -> VIP -> pod-a. Without masquerade pod-a sees its own IP as
    // source and drops it as a martian.
    const noMasq = await topo.probe(a.ns, { proto: 'tcp', host: VIP, port: 80, timeoutMs: 600 });
    t.match(noMasq, { ok: false, error: 'timeout' }, `hairpin without masquerade is dropped: ${show(noMasq)}`);
    await iptables('nat', '-A', 'POSTROUTING', '-s', POD_A.ip, '-d', POD_A.ip, '-j', 'MASQUERADE');
    for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
      const h = await topo.probe(a.ns, { proto, host: VIP, port });
      t.ok(h.ok, `hairpin pod-a -> ${VIP}:${port}/${proto} -> pod-a: ${show(h)}`);
      if (h.ok) {
        t.equal(h.pod, 'pod-a');
        t.equal(h.from, topo.nodePodSideIp, 'masqueraded to the node pod-side address');
      }
    }

    // filter REJECT / DROP (forwarded traffic from the client, and node-local traffic)
    const rejIp = '198.51.100.20';
    const dropIp = '198.51.100.21';
    for (const chain of ['FORWARD', 'OUTPUT']) {
      await iptables('filter', '-A', chain, '-d', rejIp, '-j', 'REJECT');
      await iptables('filter', '-A', chain, '-d', dropIp, '-j', 'DROP');
    }
    // all three vantage points at once: the DROP cases each wait for the full timeout
    await Promise.all(
      [topo.clientNs, topo.nodeNs, b.ns].map(async (ns) => {
        for (const proto of ['tcp', 'udp'] as const) {
          const rej = await topo.probe(ns, { proto, host: rejIp, port: 80, timeoutMs: 2000 });
          t.match(rej, { ok: false, error: 'refused' }, `${ns} ${proto} REJECT -> refused: ${show(rej)}`);
          t.ok(rej.ms < 500, `refused quickly (${rej.ms} ms)`);
        }
        const [dropTcp, dropUdp] = await Promise.all(
          (['tcp', 'udp'] as const).map((proto) => topo.probe(ns, { proto, host: dropIp, port: 80, timeoutMs: 700 })),
        );
        t.match(dropTcp, { ok: false, error: 'timeout', phase: 'connect' }, `${ns} tcp DROP -> timeout: ${show(dropTcp)}`);
        t.match(dropUdp, { ok: false, error: 'timeout' }, `${ns} udp DROP -> timeout: ${show(dropUdp)}`);
        t.ok(dropTcp.ms >= 650 && dropUdp.ms >= 650, `waited the full timeout (${dropTcp.ms}/${dropUdp.ms} ms)`);
      }),
    );

    // REJECT of a DNATed flow (service with a filtered endpoint)
    await iptables('filter', '-I', 'FORWARD', '-d', POD_A.ip, '-p', 'tcp', '--dport', '8080', '-j', 'REJECT', '--reject-with', 'tcp-reset');
    const rst = await topo.probe(topo.clientNs, { proto: 'tcp', host: VIP, port: 80, timeoutMs: 2000 });
    t.match(rst, { ok: false, error: 'refused' }, `tcp-reset after DNAT -> refused: ${show(rst)}`);
  });

  t.test('stopping a pod server makes its port refuse', async (t) => {
    await topo.stopPodServers(['pod-b']);
    const r = await topo.probe(topo.nodeNs, { proto: 'tcp', host: POD_B.ip, port: 8080, timeoutMs: 2000 });
    t.match(r, { ok: false, error: 'refused' }, show(r));
    await topo.startPodServers(['pod-b']);
    const r2 = await topo.probe(topo.nodeNs, { proto: 'tcp', host: POD_B.ip, port: 8080 });
    t.match(r2, { ok: true, pod: 'pod-b' }, show(r2));
  });

  t.test('destroyAllWithPrefix removes leftovers', async (t) => {
    const stray = `${prefix}-leftover`;
    const { execa } = await import('execa');
    await execa('ip', ['netns', 'add', `${stray}-x`]);
    const sleeper = execa('ip', ['netns', 'exec', `${stray}-x`, 'sleep', '60'], { reject: false });
    await new Promise((res) => setTimeout(res, 100));
    t.equal(pidsInNamespaces([`${stray}-x`]).length, 1, 'a process lives in the leftover namespace');
    await destroyAllWithPrefix(stray);
    t.same(listNamespacesWithPrefix(stray), [], 'leftover namespace gone');
    const r = await sleeper;
    t.ok(r.signal === 'SIGTERM' || r.signal === 'SIGKILL', `process inside was killed (${String(r.signal)})`);
  });

  t.test('destroy leaves nothing behind', async (t) => {
    const t0 = performance.now();
    await topo.destroy();
    t.comment(`destroy: ${Math.round(performance.now() - t0)} ms`);
    const { execa } = await import('execa');
    const list = await execa('ip', ['netns', 'list']);
    t.notMatch(list.stdout, prefix, `no namespace named ${prefix}* in ip netns list`);
    t.same(listNamespacesWithPrefix(prefix), []);
    await topo.destroy(); // idempotent
  });

  t.test('dual-stack topology (ipv6: true)', async (t) => {
    const prefix6 = `kpt-topo6-${process.pid}`;
    const C = { name: 'pod-c', ip: '10.244.2.20', nodeName: 'node-2' };
    const t0 = performance.now();
    const topo6 = await createTopology({ prefix: prefix6, ipv6: true, pods: [POD_A, POD_B, C] });
    t.comment(`createTopology (dual-stack, 3 pods): ${Math.round(performance.now() - t0)} ms`);
    t.teardown(async () => {
      await topo6.destroy();
      await destroyAllWithPrefix(prefix6);
    });
    const a = topo6.pod('pod-a');
    const b = topo6.pod('pod-b');
    const c = topo6.pod('pod-c');
    const ip6tables = async (table: string, ...args: string[]): Promise<void> => {
      await topo6.exec(topo6.nodeNs, ['ip6tables', '-w', '-t', table, ...args], { check: true });
    };

    t.test('layout', async (t) => {
      t.equal(topo6.ipv6, true);
      t.equal(a.ip6, 'fd00:10:244:1::10', 'pod IPv6 derived from its IPv4 address');
      t.equal(c.ip6, podIp6(C.ip));
      t.equal(c.ip6, 'fd00:10:244:2::20');
      t.equal(a.nodeName, 'node-1', 'pods are on node-1 by default');
      t.equal(c.nodeName, 'node-2', 'a pod may claim another node');
      t.equal(topo6.nodeIp6, NODE_IP6);
      t.equal(topo6.clientIp6, CLIENT_IP6);
      t.equal(topo6.nodePodSideIp6, NODE_POD_SIDE_IP6);
      t.same(topo6.extraClientIps, [CLIENT_IP2, CLIENT_IP6_2]);
      const fwd = await topo6.exec(topo6.nodeNs, ['sysctl', '-n', 'net.ipv6.conf.all.forwarding']);
      t.equal(fwd.stdout.trim(), '1', 'node forwards IPv6');
      for (const ns of topo6.namespaces) {
        const addrs = await topo6.exec(ns, ['ip', '-6', 'addr', 'show'], { check: true });
        t.notMatch(addrs.stdout, /tentative|dadfailed/, `${ns}: no address waits for DAD`);
      }
      t.match(topo6.describe(), /fd00:10:244:1::10/);
      t.match(topo6.describe(), /claims node node-2/);
      // the client's default sources are the primary ones
      const r4 = await topo6.exec(topo6.clientNs, ['ip', 'route', 'get', a.ip], { check: true });
      t.match(r4.stdout, /src 203\.0\.113\.2\b/);
      const r6 = await topo6.exec(topo6.clientNs, ['ip', '-6', 'route', 'get', a.ip6!], { check: true });
      t.match(r6.stdout, /src 2001:db8:1::2\b/);
      await t.rejects(createTopology({ prefix: `${prefix6}-bad`, pods: [{ name: 'x', ip: '10.244.1.1', ip6: 'fd00::1' }], ipv6: false }), /not dual-stack/);
    });

    t.test('IPv6 routing: node, pods and client reach every pod (tcp + udp)', async (t) => {
      const cases: Array<[string, string, string]> = [
        // [from ns, label, expected source]
        [topo6.nodeNs, 'node', NODE_POD_SIDE_IP6],
        [topo6.clientNs, 'client', CLIENT_IP6],
        [a.ns, 'pod-a', a.ip6!],
      ];
      for (const p of [b, c]) {
        for (const [ns, label, from] of cases) {
          for (const proto of ['tcp', 'udp'] as const) {
            const r = await topo6.probe(ns, { proto, host: p.ip6!, port: proto === 'tcp' ? 8080 : 5353 });
            t.match(r, { ok: true, pod: p.name, from }, `${label} -> ${p.name} [${p.ip6}] ${proto}: ${show(r)}`);
          }
        }
        // IPv4 keeps working in a dual-stack topology
        const r4 = await topo6.probe(topo6.clientNs, { proto: 'tcp', host: p.ip, port: 8080 });
        t.match(r4, { ok: true, pod: p.name, from: topo6.clientIp }, `client -> ${p.name} over IPv4: ${show(r4)}`);
      }
      // extra client source addresses, both families; a fixed source port over IPv6
      for (const proto of ['tcp', 'udp'] as const) {
        const port = proto === 'tcp' ? 8080 : 5353;
        const r6 = await topo6.probe(topo6.clientNs, { proto, host: b.ip6!, port, bind: CLIENT_IP6_2 });
        t.match(r6, { ok: true, pod: 'pod-b', from: CLIENT_IP6_2 }, `bound to ${CLIENT_IP6_2} ${proto}: ${show(r6)}`);
        const r4 = await topo6.probe(topo6.clientNs, { proto, host: b.ip, port, bind: CLIENT_IP2 });
        t.match(r4, { ok: true, pod: 'pod-b', from: CLIENT_IP2 }, `bound to ${CLIENT_IP2} ${proto}: ${show(r4)}`);
        const sp = await topo6.probe(topo6.clientNs, { proto, host: b.ip6!, port, sourcePort: 42000 });
        t.match(sp, { ok: true, from: CLIENT_IP6, fromPort: 42000 }, `IPv6 ${proto} sourcePort: ${show(sp)}`);
      }
      const closed = await topo6.probe(topo6.clientNs, { proto: 'udp', host: b.ip6!, port: 9, timeoutMs: 2000 });
      t.match(closed, { ok: false, error: 'refused' }, `IPv6 udp closed port: ${show(closed)}`);
      t.ok(closed.ms < 500, `refused quickly (${closed.ms} ms)`);
    });

    t.test('ip6tables DNAT, hairpin masquerade, REJECT and DROP in the node namespace', async (t) => {
      const VIP6 = 'fd00:10:96::10';
      const LB6 = '2001:db8:2::10';
      for (const chain of ['PREROUTING', 'OUTPUT']) {
        for (const vip of [VIP6, LB6]) {
          await ip6tables('nat', '-A', chain, '-d', vip, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `[${a.ip6}]:8080`);
          await ip6tables('nat', '-A', chain, '-d', vip, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `[${a.ip6}]:5353`);
        }
      }
      for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
        for (const vip of [VIP6, LB6]) {
          const cl = await topo6.probe(topo6.clientNs, { proto, host: vip, port });
          t.match(cl, { ok: true, pod: 'pod-a', from: CLIENT_IP6 }, `client -> [${vip}]:${port}/${proto}: ${show(cl)}`);
        }
        const n = await topo6.probe(topo6.nodeNs, { proto, host: VIP6, port });
        t.match(n, { ok: true, pod: 'pod-a', from: NODE_IP6 }, `node -> [${VIP6}]:${port}/${proto} (nat OUTPUT, source = its outside address): ${show(n)}`);
        const pb = await topo6.probe(b.ns, { proto, host: VIP6, port });
        t.match(pb, { ok: true, pod: 'pod-a', from: b.ip6 }, `pod-b -> [${VIP6}]:${port}/${proto}: ${show(pb)}`);
      }
      const noMasq = await topo6.probe(a.ns, { proto: 'tcp', host: VIP6, port: 80, timeoutMs: 600 });
      t.match(noMasq, { ok: false, error: 'timeout' }, `IPv6 hairpin without masquerade is dropped: ${show(noMasq)}`);
      await ip6tables('nat', '-A', 'POSTROUTING', '-s', a.ip6!, '-d', a.ip6!, '-j', 'MASQUERADE');
      await ip6tables('nat', '-A', 'POSTROUTING', '-s', NODE_IP6, '-d', 'fd00:10:244::/56', '-j', 'MASQUERADE');
      for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
        const h = await topo6.probe(a.ns, { proto, host: VIP6, port });
        t.match(h, { ok: true, pod: 'pod-a', from: NODE_POD_SIDE_IP6 }, `IPv6 hairpin masqueraded to ${NODE_POD_SIDE_IP6} ${proto}: ${show(h)}`);
        const n = await topo6.probe(topo6.nodeNs, { proto, host: VIP6, port });
        t.match(n, { ok: true, pod: 'pod-a', from: NODE_POD_SIDE_IP6 }, `node -> service masqueraded to ${NODE_POD_SIDE_IP6} ${proto}: ${show(n)}`);
      }

      const rej = 'fd00:10:96::20';
      const drop = 'fd00:10:96::21';
      for (const chain of ['FORWARD', 'OUTPUT']) {
        await ip6tables('filter', '-A', chain, '-d', rej, '-j', 'REJECT');
        await ip6tables('filter', '-A', chain, '-d', drop, '-j', 'DROP');
      }
      await Promise.all(
        [topo6.clientNs, topo6.nodeNs, b.ns].map(async (ns) => {
          for (const proto of ['tcp', 'udp'] as const) {
            const r = await topo6.probe(ns, { proto, host: rej, port: 80, timeoutMs: 2000 });
            t.match(r, { ok: false, error: 'refused' }, `${ns} IPv6 ${proto} REJECT -> refused: ${show(r)}`);
            // Kernel fact: the ICMPv6 error answering the first SYN arrives while connect()
            // still owns the socket and is dropped (TcpExtLockDroppedIcmps); the SYN
            // retransmitted after 1 s gets the error through. IPv4 and UDP are immediate.
            const limit = proto === 'tcp' ? 1500 : 500;
            t.ok(r.ms < limit, `refused within ${limit} ms (${r.ms} ms)`);
          }
          const [dt, du] = await Promise.all(
            (['tcp', 'udp'] as const).map((proto) => topo6.probe(ns, { proto, host: drop, port: 80, timeoutMs: 700 })),
          );
          t.match(dt, { ok: false, error: 'timeout', phase: 'connect' }, `${ns} IPv6 tcp DROP -> timeout: ${show(dt)}`);
          t.match(du, { ok: false, error: 'timeout' }, `${ns} IPv6 udp DROP -> timeout: ${show(du)}`);
        }),
      );
    });

    t.test('destroy leaves nothing behind', async (t) => {
      await topo6.destroy();
      t.same(listNamespacesWithPrefix(prefix6), []);
    });
  });
}
