import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addressesFromIpJson, runTraceCommand } from '../../src/agent/trace-command.js';
import type { TraceCommandIO, TraceCommandJSON } from '../../src/agent/trace-command.js';
import { DEFAULT_RENDER_CONFIG, renderFull } from '../../src/backends/iptables/render.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
import { DEFAULT_NFT_CONFIG, renderFullSync } from '../../src/backends/nftables/render.js';
import { service, slice, snapshotOf } from '../helpers/model.js';

const NODE_IP = '203.0.113.1';
const CLIENT = '203.0.113.2';
const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';

const snapshot = snapshotOf(
  [
    service({ name: 'web', type: 'LoadBalancer', clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['198.51.100.10'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080, targetPort: 8080 }] }),
    service({ name: 'dns', clusterIPs: ['10.96.0.53'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 0, targetPort: 5353 }] }),
    service({ name: 'empty', type: 'NodePort', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30020, targetPort: 8080 }] }),
  ],
  [
    slice('web', [{ ip: POD_A }, { ip: POD_B }]),
    slice('dns', [{ ip: POD_A }], { ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }] }),
  ],
);
const RULES = renderFull(snapshot, { ...DEFAULT_RENDER_CONFIG, clusterCIDR: '10.244.0.0/16' }, { missingJumps: JUMP_RULES, staleServiceChains: [] }).text;
/** The same services as the nftables backend writes them (`nft -f` input). */
const NFT_RULES = renderFullSync(snapshot, { ...DEFAULT_NFT_CONFIG, clusterCIDR: '10.244.0.0/16' }).text;

/** `nft list ruleset ip` / `… inet` style output: a small kube-proxy table, and someone else's firewall. */
const NFT_LISTED_IP = `table ip kube-proxy {
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 10.96.0.10 tcp dport 80 dnat to 10.244.1.2:8080
\t}
}
`;
const NFT_LISTED_INET = `table inet firewall {
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 192.0.2.66 drop
\t}
}
`;

/** A small hand-written ip6tables-save dump: one ClusterIP DNATed to one endpoint. */
const RULES_V6 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d fd00:96::10/128 -p tcp -m comment --comment "ns/web6:http cluster IP" -m tcp --dport 80 -j DNAT --to-destination [fd00:244::2]:8080
COMMIT
`;

const dir = t.testdir({
  'rules.txt': RULES,
  'rules6.txt': RULES_V6,
  'garbage.txt': '*nat\n-A NOPE -j ACCEPT\nCOMMIT\n',
  'rules.nft': `#!/usr/sbin/nft -f\n${NFT_RULES}`,
  'listed.nft': NFT_LISTED_IP + NFT_LISTED_INET,
  'broken.nft': 'table ip kube-proxy {\n\tchain x {\n\t\tip daddr 10.96.0.10 tcp dport 80 dnat to\n',
  'neither.txt': '# saved by hand\nhello world\n',
  'empty.txt': '\n# nothing\n',
});
const RULES_FILE = join(dir, 'rules.txt');

interface Run {
  code: number;
  out: string;
  err: string;
  ran: string[];
}

async function trace(argv: string[], io: Partial<TraceCommandIO> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const ran: string[] = [];
  const code = await runTraceCommand(argv, {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    run: async (file, args) => {
      ran.push([file, ...args].join(' '));
      throw new Error(`${file}: not expected in this test`);
    },
    ...io,
  });
  return { code, out, err, ran };
}

const fromFile = ['--input', RULES_FILE, '--local-addresses', `${NODE_IP},10.244.255.1`];

t.test('a ClusterIP from outside: both endpoints, 50% each', async (t) => {
  const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...fromFile]);
  t.equal(r.code, 0, r.err);
  t.equal(r.err, '');
  t.match(r.out, /^Packet: tcp 203\.0\.113\.2 → 10\.96\.0\.10:80, arriving from outside/m);
  t.match(r.out, new RegExp(`^Rules: ${RULES_FILE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  t.match(r.out, /^Local addresses: 203\.0\.113\.1, 10\.244\.255\.1$/m);
  t.match(r.out, /^Verdict: ACCEPT/m);
  t.match(r.out, /^ {2}10\.244\.1\.2:8080 {2}50%$/m);
  t.match(r.out, /^ {2}10\.244\.1\.3:8080 {2}50%$/m);
  t.match(r.out, /Masquerade: always/, 'from outside the cluster CIDR: masqueraded');
  t.match(r.out, /KUBE-SVC-/, 'the chains on the way are shown');
  t.equal(r.ran.length, 0, 'nothing run: rules from the file, addresses from the flag');
});

t.test('a source that is a local address is traced as sent by the host', async (t) => {
  const r = await trace(['--src', NODE_IP, '--dst', `${NODE_IP}:30080`, ...fromFile]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /sent by this host/);
  t.match(r.out, /^Verdict: ACCEPT/m);
  t.match(r.out, /10\.244\.1\.2:8080 {2}50%/);
  const json = JSON.parse((await trace(['--src', '127.0.0.1', '--dst', '10.96.0.10:80', ...fromFile, '--json'])).out) as TraceCommandJSON;
  t.equal(json.packet.origin, 'local', 'loopback is always local');
});

t.test('--json: the packet, the rules, the addresses and the tracer result', async (t) => {
  const r = await trace(['--src', '10.244.1.9', '--dst', '10.96.0.53:53', '--proto', 'udp', ...fromFile, '--json']);
  t.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as TraceCommandJSON;
  t.same(json.packet, { origin: 'forward', src: '10.244.1.9', dst: '10.96.0.53', proto: 'udp', dport: 53, family: 'IPv4' });
  t.same(json.rules, { mode: 'iptables', source: RULES_FILE, reason: `auto: ${RULES_FILE} holds iptables rules` });
  t.same(json.localAddresses, [NODE_IP, '10.244.255.1']);
  t.equal(json.result.verdict, 'ACCEPT');
  t.same(json.result.endpoints, [{ address: POD_A, port: 5353, probability: 1 }]);
  t.equal(json.result.masquerade, 'never', 'from a pod: not masqueraded');
  t.ok(json.result.paths.length >= 1 && json.result.paths.every((p) => Array.isArray(p.steps)), 'paths with their steps');
  t.ok(json.result.paths[0]!.steps.some((s) => s.action.startsWith('DNAT')), 'the DNAT step is there');
});

t.test('a verdict other than ACCEPT is still a successful trace (exit 0)', async (t) => {
  const r = await trace(['--src', CLIENT, '--dst', `${NODE_IP}:30020`, ...fromFile]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^Verdict: REJECT/m);
  t.match(r.out, /Endpoints: none/);
  t.match(r.out, /Rejected by filter\/KUBE-/);
  const json = JSON.parse((await trace(['--src', CLIENT, '--dst', `${NODE_IP}:30020`, ...fromFile, '--json'])).out) as TraceCommandJSON;
  t.equal(json.result.verdict, 'REJECT');
  t.same(json.result.endpoints, []);
});

t.test('IPv6: [addr]:port, rules from standard input', async (t) => {
  const r = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--input', '-', '--local-addresses', 'fd00::1', '--json'], {
    readStdin: async () => RULES_V6,
  });
  t.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as TraceCommandJSON;
  t.same(json.packet, { origin: 'forward', src: 'fd00:244::9', dst: 'fd00:96::10', proto: 'tcp', dport: 80, family: 'IPv6' });
  t.same(json.rules, { mode: 'iptables', source: 'standard input', reason: 'auto: standard input holds iptables rules' });
  t.same(json.result.endpoints, [{ address: 'fd00:244::2', port: 8080, probability: 1 }]);
  const text = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--input', join(dir, 'rules6.txt'), '--local-addresses', 'fd00::1']);
  t.match(text.out, /\[fd00:96::10\]:80/);
  t.match(text.out, /\[fd00:244::2\]:8080 {2}100%/);
});

t.test('live rules: iptables-save or ip6tables-save, and the addresses from ip -j addr', async (t) => {
  const ipJson = JSON.stringify([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1' }, { family: 'inet6', local: '::1' }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: NODE_IP, prefixlen: 24 }, { family: 'inet6', local: 'fe80::1' }] },
  ]);
  const ran: string[] = [];
  const run = async (file: string, args: string[]): Promise<string> => {
    ran.push([file, ...args].join(' '));
    if (file === 'iptables-save') return RULES;
    if (file === 'ip6tables-save') return RULES_V6;
    if (file === 'ip') return ipJson;
    if (file === 'nft') throw new Error(`nft ${args.join(' ')} failed (exit status 1): Error: No such file or directory`);
    throw new Error('unexpected');
  };
  const r = await trace(['--src', NODE_IP, '--dst', '10.96.0.10:80', '--json'], { run });
  t.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as TraceCommandJSON;
  t.same(ran.sort(), ['ip -j addr', 'iptables-save', 'nft list table ip kube-proxy']);
  t.same(json.localAddresses, ['127.0.0.1', '::1', NODE_IP, 'fe80::1']);
  t.equal(json.packet.origin, 'local', 'the source is one of the addresses ip printed');
  t.match(json.rules, { mode: 'iptables', source: /^iptables-save/, reason: 'auto: no table ip kube-proxy' });

  ran.length = 0;
  const r6 = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80'], { run });
  t.equal(r6.code, 0, r6.err);
  t.same(ran.sort(), ['ip -j addr', 'ip6tables-save', 'nft list table ip6 kube-proxy']);
  t.match(r6.out, /^Rules: ip6tables-save/m);
});

t.test('bad arguments: exit 2, the message names the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--dst', '10.96.0.10:80'], /--src is required/],
    [['--src', CLIENT], /--dst is required/],
    [['--src', 'nope', '--dst', '10.96.0.10:80'], /--src: "nope" is not an IP address/],
    [['--src', '010.0.0.1', '--dst', '10.96.0.10:80'], /--src:/],
    [['--src', CLIENT, '--dst', '10.96.0.10'], /--dst: .*needs a port/],
    [['--src', CLIENT, '--dst', 'example.com:80'], /--dst: "example.com" is not an IP address/],
    [['--src', CLIENT, '--dst', '10.96.0.10:0'], /--dst: port "0"/],
    [['--src', CLIENT, '--dst', '10.96.0.10:65536'], /--dst: port/],
    [['--src', CLIENT, '--dst', '10.96.0.10:http'], /--dst: port "http"/],
    [['--src', 'fd00::9', '--dst', 'fd00::10:80'], /--dst: .*brackets/],
    [['--src', 'fd00::9', '--dst', '10.96.0.10:80'], /--src fd00::9 and --dst 10\.96\.0\.10:80 are not the same IP family/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--proto', 'icmp'], /--proto/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--local-addresses', '203.0.113.1,bad'], /--local-addresses: "bad" is not an IP address/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', ''], /--input/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--mode', 'ipvs'], /--mode.*'ipvs'.*auto, iptables, nftables/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--mode'], /--mode/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', '--frobnicate'], /--frobnicate/],
    [['--src', CLIENT, '--dst', '10.96.0.10:80', 'extra'], /too many arguments|extra/],
  ];
  for (const [argv, msg] of cases) {
    const r = await trace(argv);
    t.equal(r.code, 2, `exit 2: ${argv.join(' ')}`);
    t.match(r.err, msg, `message: ${argv.join(' ')}`);
    t.equal(r.out, '', 'nothing on stdout');
    t.same(r.ran, [], 'nothing run');
  }
});

t.test('rules that cannot be read or parsed: exit 1 with a message', async (t) => {
  let r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', join(dir, 'missing.txt'), '--local-addresses', NODE_IP]);
  t.equal(r.code, 1);
  t.match(r.err, /cannot read the rules from .*missing\.txt: no such file/);

  r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', join(dir, 'garbage.txt'), '--local-addresses', NODE_IP]);
  t.equal(r.code, 1);
  t.match(r.err, /cannot parse the iptables rules from .*garbage\.txt: iptables rules line 2/);

  r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--local-addresses', NODE_IP], {
    run: async (file) => {
      throw new Error(`${file}: command not found`);
    },
  });
  t.equal(r.code, 1);
  t.match(r.err, /cannot read the live rules: iptables-save: command not found/);

  r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', RULES_FILE], {
    run: async () => {
      throw new Error('ip: command not found');
    },
  });
  t.equal(r.code, 1);
  t.match(r.err, /cannot read the local addresses \(give them with --local-addresses\)/);

  r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', RULES_FILE], { run: async () => 'not json' });
  t.equal(r.code, 1);
  t.match(r.err, /did not print JSON/);
});

/** A fake host for the live-rules tests: which commands it has and what they print. */
function host(nft: 'table' | 'no-table' | 'missing' | 'denied', ruleset: { ip?: string; ip6?: string; inet?: string } = {}) {
  const ran: string[] = [];
  const run = async (file: string, args: string[]): Promise<string> => {
    const cmd = [file, ...args].join(' ');
    ran.push(cmd);
    if (file === 'ip') return '[]';
    if (file === 'iptables-save') return RULES;
    if (file === 'ip6tables-save') return RULES_V6;
    if (nft === 'missing') throw new Error(`${file}: command not found`);
    if (nft === 'denied') throw new Error(`${cmd} failed (exit status 1): Operation not permitted (you must be root)`);
    const list = /^nft list ruleset (ip6?|inet)$/.exec(cmd);
    if (list) return ruleset[list[1] as 'ip' | 'ip6' | 'inet'] ?? '';
    if (/^nft list table ip6? kube-proxy$/.test(cmd) && nft === 'table') return ruleset.ip ?? ruleset.ip6 ?? '';
    throw new Error(`${cmd} failed (exit status 1): Error: No such file or directory | ${cmd}`);
  };
  return { ran, run };
}

const local = ['--local-addresses', NODE_IP];
const json = (r: Run): TraceCommandJSON => JSON.parse(r.out) as TraceCommandJSON;

t.test('auto, live: nftables when table ip kube-proxy exists, every ip and inet table traced', async (t) => {
  const h = host('table', { ip: NFT_RULES, inet: NFT_LISTED_INET });
  const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, '--json'], { run: h.run });
  t.equal(r.code, 0, r.err);
  t.equal(r.err, '');
  t.same(h.ran.sort(), ['nft list ruleset inet', 'nft list ruleset ip', 'nft list table ip kube-proxy'], 'no iptables-save');
  const doc = json(r);
  t.match(doc.rules, { mode: 'nftables', source: /^nft list ruleset ip, nft list ruleset inet/, reason: 'auto: table ip kube-proxy exists' });
  t.equal(doc.result.verdict, 'ACCEPT');
  t.same(doc.result.endpoints, [{ address: POD_A, port: 8080, probability: 0.5 }, { address: POD_B, port: 8080, probability: 0.5 }]);
  t.equal(doc.result.masquerade, 'always', 'from outside the cluster CIDR');

  // the other table's forward chain sees the packet too
  const dropped = await trace(['--src', '192.0.2.66', '--dst', '10.96.0.10:80', ...local, '--json'], { run: host('table', { ip: NFT_RULES, inet: NFT_LISTED_INET }).run });
  t.equal(dropped.code, 0, dropped.err);
  t.equal(json(dropped).result.verdict, 'DROP', 'dropped by inet firewall');

  const text = await trace(['--src', CLIENT, '--dst', `${NODE_IP}:30020`, ...local], { run: host('table', { ip: NFT_RULES }).run });
  t.equal(text.code, 0, text.err);
  t.match(text.out, /^Mode: nftables \(auto: table ip kube-proxy exists\)$/m);
  t.match(text.out, /^Verdict: REJECT/m, 'no endpoints');
  t.match(text.out, /\[ip kube-proxy\//, 'steps name table and chain');
});

t.test('auto, live: iptables when there is no kube-proxy table or no nft', async (t) => {
  for (const [nft, reason] of [['no-table', 'auto: no table ip kube-proxy'], ['missing', 'auto: nft is not installed']] as const) {
    const h = host(nft);
    const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, '--json'], { run: h.run });
    t.equal(r.code, 0, r.err);
    t.same(h.ran.sort(), ['iptables-save', 'nft list table ip kube-proxy']);
    t.match(json(r).rules, { mode: 'iptables', source: /^iptables-save/, reason });
    t.equal(json(r).result.endpoints.length, 2);
  }
  const h6 = host('no-table');
  const r6 = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--local-addresses', 'fd00::1', '--json'], { run: h6.run });
  t.equal(r6.code, 0, r6.err);
  t.same(h6.ran.sort(), ['ip6tables-save', 'nft list table ip6 kube-proxy'], 'IPv6: asks about ip6 kube-proxy');
});

t.test('auto, live IPv6: table ip6 kube-proxy, nft list ruleset ip6 and inet', async (t) => {
  const v6 = renderFullSync(
    snapshotOf([service({ name: 'web6', clusterIPs: ['fd00:96::10'] })], [slice('web6', [{ ip: 'fd00:244::2' }], { addressType: 'IPv6' })], 'node-1', 'IPv6'),
    { ...DEFAULT_NFT_CONFIG, family: 'IPv6', clusterCIDR: 'fd00:244::/64' },
  ).text;
  const h = host('table', { ip6: v6, ip: NFT_RULES });
  const r = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80', '--local-addresses', 'fd00::1', '--json'], { run: h.run });
  t.equal(r.code, 0, r.err);
  t.same(h.ran.sort(), ['nft list ruleset inet', 'nft list ruleset ip6', 'nft list table ip6 kube-proxy']);
  t.match(json(r).rules, { mode: 'nftables', reason: 'auto: table ip6 kube-proxy exists' });
  t.same(json(r).result.endpoints, [{ address: 'fd00:244::2', port: 8080, probability: 1 }]);
});

t.test('--mode chooses without asking', async (t) => {
  const ipt = host('table', { ip: NFT_RULES });
  const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, '--mode', 'iptables', '--json'], { run: ipt.run });
  t.equal(r.code, 0, r.err);
  t.same(ipt.ran, ['iptables-save']);
  t.match(json(r).rules, { mode: 'iptables', reason: '--mode iptables' });

  const nft = host('no-table', { ip: NFT_LISTED_IP });
  const n = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, '--mode', 'nftables', '--json'], { run: nft.run });
  t.equal(n.code, 0, n.err);
  t.same(nft.ran.sort(), ['nft list ruleset inet', 'nft list ruleset ip']);
  t.match(json(n).rules, { mode: 'nftables', reason: '--mode nftables' });
  t.same(json(n).result.endpoints, [{ address: POD_A, port: 8080, probability: 1 }]);

  // nftables mode with no kube-proxy table: traced, with a note
  const none = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, '--mode', 'nftables', '--json'], { run: host('no-table', { inet: NFT_LISTED_INET }).run });
  t.equal(none.code, 0, none.err);
  t.match(none.err, /note: the rules have no table ip kube-proxy/);
  t.match(json(none).rules.notes, [/no table ip kube-proxy/]);
  t.same(json(none).result.endpoints, []);
});

t.test('saved nftables rules: nft -f input or nft list output, by content', async (t) => {
  const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', join(dir, 'rules.nft'), ...local, '--json']);
  t.equal(r.code, 0, r.err);
  t.match(json(r).rules, { mode: 'nftables', source: join(dir, 'rules.nft'), reason: /^auto: .*rules\.nft holds nftables rules$/ });
  t.same(json(r).result.endpoints.map((e) => e.address), [POD_A, POD_B]);

  const listed = join(dir, 'listed.nft');
  t.same(json(await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', listed, ...local, '--json'])).result.endpoints, [{ address: POD_A, port: 8080, probability: 1 }]);
  t.equal(json(await trace(['--src', '192.0.2.66', '--dst', '10.96.0.10:80', '--input', listed, ...local, '--json'])).result.verdict, 'DROP');

  const stdin = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', '-', ...local], { readStdin: async () => NFT_RULES });
  t.equal(stdin.code, 0, stdin.err);
  t.match(stdin.out, /^Mode: nftables \(auto: standard input holds nftables rules\)$/m);
  t.match(stdin.out, /10\.244\.1\.3:8080 {2}50%/);

  t.match(json(await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', '--input', listed, ...local, '--mode', 'nftables', '--json'])).rules, { reason: '--mode nftables' });
});

t.test('nftables errors: exit 1 with a readable message', async (t) => {
  const cases: [string[], Partial<TraceCommandIO>, RegExp][] = [
    [['--mode', 'nftables'], { run: host('missing').run }, /cannot read the live rules: nft: command not found/],
    [['--mode', 'nftables'], { run: host('denied').run }, /Operation not permitted.*needs root/],
    [[], { run: host('denied').run }, /cannot read the live rules: nft list table ip kube-proxy failed.*needs root/],
    [['--mode', 'nftables'], { run: host('table', { ip: 'table ip kube-proxy {\n\tchain {\n' }).run }, /cannot parse the nftables rules from nft list ruleset ip: /],
    [['--input', join(dir, 'broken.nft')], {}, /cannot parse the nftables rules from .*broken\.nft: /],
    [['--input', join(dir, 'neither.txt')], {}, /cannot tell what kind of rules .*neither\.txt holds: line 2 \("hello world"\).*--mode/],
    [['--input', join(dir, 'empty.txt')], {}, /cannot trace through .*empty\.txt: it holds no rules/],
    [['--input', RULES_FILE, '--mode', 'nftables'], {}, /cannot parse the nftables rules from .*rules\.txt: .*\(they look like iptables rules: try --mode iptables or auto\)/],
    [['--input', join(dir, 'rules.nft'), '--mode', 'iptables'], {}, /cannot parse the iptables rules from .*rules\.nft: .*try --mode nftables/],
  ];
  for (const [argv, io, msg] of cases) {
    const r = await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local, ...argv], io);
    t.equal(r.code, 1, `exit 1: ${argv.join(' ')}`);
    t.match(r.err, msg, argv.join(' ') || 'auto');
    t.equal(r.out, '');
  }
  const h = host('denied');
  await trace(['--src', CLIENT, '--dst', '10.96.0.10:80', ...local], { run: h.run });
  t.same(h.ran, ['nft list table ip kube-proxy'], 'not permitted: no fallback to iptables-save');
});

t.test('--help', async (t) => {
  const r = await trace(['--help']);
  t.equal(r.code, 0);
  t.match(r.out, /Usage: kube-proxy-ts trace/);
  for (const flag of ['--src', '--dst', '--proto', '--mode', '--input', '--local-addresses', '--json']) t.match(r.out, flag);
  t.match(r.out, /auto +\(default\) nftables if nft list table ip kube-proxy/, 'the auto rule is explained');
});

t.test('addressesFromIpJson', async (t) => {
  t.same(addressesFromIpJson('[]'), []);
  t.same(
    addressesFromIpJson(JSON.stringify([{ addr_info: [{ local: '10.0.0.1' }, { local: '10.0.0.1' }, { local: 'fe80::1' }, { nothing: 1 }] }, { ifname: 'x' }, 3])),
    ['10.0.0.1', 'fe80::1'],
  );
});

// keep the fixture next to the test output for humans debugging a failure
t.test('fixture sanity', async (t) => {
  await writeFile(join(dir, 'README'), 'rules.txt is renderFull() of the snapshot in trace-command.test.ts\n');
  t.match(RULES, /^\*nat$/m);
  t.match(RULES, /KUBE-SERVICES/);
});
