/**
 * As root: the rendered text for a snapshot that uses every feature of the
 * iptables renderer (session affinity, both traffic policies with and without
 * local endpoints, topology hints, loadBalancerSourceRanges, health check
 * ports, NodePort addresses, localhost NodePorts, large-cluster mode) is
 * accepted by the real iptables-restore, and the IPv6 rendering by the real
 * ip6tables-restore, in a throwaway network namespace. What the kernel then
 * holds is read back with iptables-save and compared with what was written.
 */
import t from 'tap';
import { execa } from 'execa';
import { DEFAULT_RENDER_CONFIG, renderFull } from '../../src/backends/iptables/render.js';
import type { RenderConfig } from '../../src/backends/iptables/render.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
import type { Service } from '../../src/agent/model/types.js';
import { parseIptablesRules } from '../../src/trace/iptables/parse.js';
import type { Ruleset } from '../../src/trace/iptables/parse.js';
import { service, slice, snapshotOf } from '../helpers/model.js';
import type { EpSpec } from '../helpers/model.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create a network namespace and run iptables-restore');
  process.exit(0);
}

const NS = `kpt-r-accept-${process.pid}`;
await execa('ip', ['netns', 'add', NS]);
t.teardown(async () => {
  await execa('ip', ['netns', 'del', NS], { reject: false });
});

const inNs = (cmd: string, args: string[], input?: string) => execa('ip', ['netns', 'exec', NS, cmd, ...args], { reject: false, ...(input !== undefined ? { input } : {}) });

const tcp = (name: string, port: number, nodePort = 0) => ({ name, protocol: 'TCP' as const, port, nodePort, targetPort: 8080 });
const udp = (name: string, port: number, nodePort = 0) => ({ name, protocol: 'UDP' as const, port, nodePort, targetPort: 8080 });

/** Every feature, once per family: `ip` maps an IPv4 address to the family's address. */
function everyFeature(ip: (v4: string) => string, addressType: 'IPv4' | 'IPv6', sourceRange: string) {
  const ep = (a: string, over: Partial<EpSpec> = {}): EpSpec => ({ ip: ip(a), ...over });
  const svcs: Service[] = [
    service({ name: 'sticky', clusterIPs: [ip('10.96.1.1')], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 600 }),
    service({
      name: 'local-ext',
      type: 'LoadBalancer',
      clusterIPs: [ip('10.96.2.1')],
      loadBalancerIPs: [ip('198.51.100.20')],
      externalIPs: [ip('192.0.2.20')],
      loadBalancerSourceRanges: [sourceRange],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      sessionAffinity: 'ClientIP',
      ports: [tcp('http', 80, 30200), udp('dns', 53, 30201)],
    }),
    service({
      name: 'local-none',
      type: 'LoadBalancer',
      clusterIPs: [ip('10.96.3.1')],
      loadBalancerIPs: [ip('198.51.100.30')],
      externalIPs: [ip('192.0.2.30')],
      loadBalancerSourceRanges: [sourceRange],
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Local',
      healthCheckNodePort: 32001,
      ports: [tcp('http', 80, 30300)],
    }),
    service({ name: 'itp-local', clusterIPs: [ip('10.96.4.1')], internalTrafficPolicy: 'Local' }),
    service({ name: 'zoned', clusterIPs: [ip('10.96.6.1')] }),
    service({ name: 'empty', type: 'LoadBalancer', clusterIPs: [ip('10.96.8.1')], loadBalancerIPs: [ip('198.51.100.80')], externalIPs: [ip('192.0.2.80')], ports: [tcp('http', 80, 30800)] }),
    service({ name: 'sctp', clusterIPs: [ip('10.96.9.1')], ports: [{ name: 'x', protocol: 'SCTP', port: 9, nodePort: 0, targetPort: 9 }] }),
  ];
  const slices = [
    slice('sticky', [ep('10.244.1.2'), ep('10.244.1.3')], { addressType }),
    slice('local-ext', [ep('10.244.1.2'), ep('10.244.2.2', { node: 'node-2' })], {
      addressType,
      ports: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'dns', protocol: 'UDP', port: 5353 },
      ],
    }),
    slice('local-none', [ep('10.244.2.2', { node: 'node-2' }), ep('10.244.2.3', { node: 'node-2', ready: false, serving: true, terminating: true })], { addressType }),
    slice('itp-local', [ep('10.244.1.2'), ep('10.244.1.4', { ready: false, serving: true, terminating: true }), ep('10.244.2.2', { node: 'node-2' })], { addressType }),
    slice(
      'zoned',
      [
        ep('10.244.1.2', { forZones: ['zone-a'], forNodes: ['node-1'] }),
        ep('10.244.2.2', { node: 'node-2', forZones: ['zone-a'], forNodes: ['node-2'] }),
        ep('10.244.3.2', { node: 'node-3', forZones: ['zone-b'], forNodes: ['node-3'] }),
      ],
      { addressType },
    ),
    slice('sctp', [ep('10.244.1.5')], { addressType, ports: [{ name: 'x', protocol: 'SCTP', port: 9 }] }),
  ];
  return snapshotOf(svcs, slices, 'node-1', addressType);
}

const v4 = (a: string): string => a;
/** 10.96.1.1 → fd00:10:96::1:1, 198.51.100.20 → fd00:198:51:100::20 ... (a stable IPv6 twin). */
const v6 = (a: string): string => {
  const [w, x, y, z] = a.split('.');
  return `fd00:${w}:${x}:${y}::${z}`;
};

const base: Partial<RenderConfig> = { nodeName: 'node-1', nodeZone: 'zone-a' };
const variants: Array<{ name: string; family: 'IPv4' | 'IPv6'; cfg: Partial<RenderConfig> }> = [
  { name: 'IPv4, every local address, localhost NodePorts', family: 'IPv4', cfg: { clusterCIDR: '10.244.0.0/16', nodeIP: '203.0.113.1' } },
  { name: 'IPv4, listed NodePort addresses incl. loopback, large-cluster mode', family: 'IPv4', cfg: { clusterCIDR: '10.244.0.0/16', nodeIP: '203.0.113.1', nodePortAddresses: ['203.0.113.1', '192.0.2.1', '127.0.0.1'], largeClusterMode: true } },
  { name: 'IPv4, localhost NodePorts off, masquerade-all, no --random-fully', family: 'IPv4', cfg: { masqueradeAll: true, randomFully: false, nodeIP: '198.18.0.1', localhostNodePorts: false, masqueradeBit: 3 } },
  { name: 'IPv6, every local address', family: 'IPv6', cfg: { family: 'IPv6', clusterCIDR: 'fd00:10:244::/48', nodeIP: '2001:db8::1' } },
  { name: 'IPv6, listed NodePort addresses, large-cluster mode', family: 'IPv6', cfg: { family: 'IPv6', clusterCIDR: 'fd00:10:244::/48', nodeIP: '2001:db8::1', nodePortAddresses: ['2001:db8::1', '::1'], largeClusterMode: true } },
];

const snapshots = {
  IPv4: everyFeature(v4, 'IPv4', '203.0.113.0/25'),
  IPv6: everyFeature(v6, 'IPv6', '2001:db8::/64'),
};

/** Rules per chain (user chains, and the jump rules in built-in chains), normalised by iptables-save's own parse. */
function chainsOf(rs: Ruleset): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tn, table] of rs.tables) for (const [cn, chain] of table.chains) if (chain.rules.length > 0) out.set(`${tn}/${cn}`, chain.rules.length);
  return out;
}

for (const v of variants) {
  t.test(v.name, async (t) => {
    const tool = v.family === 'IPv6' ? 'ip6tables' : 'iptables';
    const cfg: RenderConfig = { ...DEFAULT_RENDER_CONFIG, ...base, ...v.cfg };
    const { text } = renderFull(snapshots[v.family], cfg, { missingJumps: JUMP_RULES, staleServiceChains: [] });
    // Start from empty tables, so every jump rule is inserted.
    for (const table of ['filter', 'nat', 'mangle']) {
      await inNs(tool, ['-t', table, '-F']);
      await inNs(tool, ['-t', table, '-X']);
    }
    const restore = await inNs(`${tool}-restore`, ['--noflush'], text);
    t.equal(restore.exitCode, 0, `${tool}-restore accepts the input${restore.stderr ? `: ${restore.stderr}` : ''}`);
    if (restore.exitCode !== 0) return;
    const saved = await inNs(`${tool}-save`, []);
    t.equal(saved.exitCode, 0);
    const written = chainsOf(parseIptablesRules(text));
    const kernel = chainsOf(parseIptablesRules(saved.stdout));
    t.same(kernel, written, 'the kernel holds every chain with as many rules as written');
    // A resync (jumps present now) rewrites every chain to the same content.
    const again = renderFull(snapshots[v.family], cfg, { missingJumps: [], staleServiceChains: [] }).text;
    const second = await inNs(`${tool}-restore`, ['--noflush'], again);
    t.equal(second.exitCode, 0, `the resync is accepted${second.stderr ? `: ${second.stderr}` : ''}`);
    t.same(chainsOf(parseIptablesRules((await inNs(`${tool}-save`, [])).stdout)), written, 'and leaves the same rules');
    t.ok(written.size > 20, 'a substantial ruleset');
    if (v.family === 'IPv6') t.notMatch(saved.stdout, /127\.0\.0\.0/);
    if (v.cfg.largeClusterMode) t.notMatch(saved.stdout, /-A KUBE-SEP-\S+ -m comment/);
    else t.match(saved.stdout, /-A KUBE-SEP-\S+ .*-m comment/);
    t.match(saved.stdout, /--rcheck --seconds 600 --reap/);
    t.match(saved.stdout, /--set/);
    t.match(saved.stdout, /KUBE-FW-/);
    t.match(saved.stdout, /KUBE-SVL-/);
    t.match(saved.stdout, /has no local endpoints/);
    t.match(saved.stdout, /health check node port/);
  });
}
