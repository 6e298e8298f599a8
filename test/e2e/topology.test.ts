// End-to-end check of the network-namespace harness itself (no kube-proxy involved):
// builds a 2-pod topology, proves plain routing works, then hand-written iptables
// rules in the node namespace (DNAT, hairpin MASQUERADE, REJECT, DROP) behave as
// the kube-proxy e2e tests will expect. Needs root.
import t from 'tap';
import { performance } from 'node:perf_hooks';
import {
  createTopology,
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
}
