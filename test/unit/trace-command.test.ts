import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addressesFromIpJson, runTraceCommand } from '../../src/agent/trace-command.js';
import type { TraceCommandIO, TraceCommandJSON } from '../../src/agent/trace-command.js';
import { DEFAULT_RENDER_CONFIG, renderFull } from '../../src/backends/iptables/render.js';
import { JUMP_RULES } from '../../src/backends/iptables/names.js';
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

const dir = t.testdir({ 'rules.txt': RULES, 'rules6.txt': RULES_V6, 'garbage.txt': '*nat\n-A NOPE -j ACCEPT\nCOMMIT\n' });
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
  t.same(json.rules, { source: RULES_FILE });
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
  t.same(json.rules, { source: 'standard input' });
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
    throw new Error('unexpected');
  };
  const r = await trace(['--src', NODE_IP, '--dst', '10.96.0.10:80', '--json'], { run });
  t.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as TraceCommandJSON;
  t.same(ran.sort(), ['ip -j addr', 'iptables-save']);
  t.same(json.localAddresses, ['127.0.0.1', '::1', NODE_IP, 'fe80::1']);
  t.equal(json.packet.origin, 'local', 'the source is one of the addresses ip printed');
  t.match(json.rules.source, /^iptables-save/);

  ran.length = 0;
  const r6 = await trace(['--src', 'fd00:244::9', '--dst', '[fd00:96::10]:80'], { run });
  t.equal(r6.code, 0, r6.err);
  t.same(ran.sort(), ['ip -j addr', 'ip6tables-save']);
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
  t.match(r.err, /cannot parse the rules from .*garbage\.txt: iptables rules line 2/);

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

t.test('--help', async (t) => {
  const r = await trace(['--help']);
  t.equal(r.code, 0);
  t.match(r.out, /Usage: kube-proxy-ts trace/);
  for (const flag of ['--src', '--dst', '--proto', '--input', '--local-addresses', '--json']) t.match(r.out, flag);
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
