import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  ConfigError,
  decodeKubeProxyConfig,
  defaultKubeProxyConfig,
  emptyKubeProxyConfig,
  formatGoDuration,
  loadKubeProxyConfig,
  parseGoDuration,
  withDefaults,
} from '../../src/agent/config/kubeproxy-config.js';
import { mergeConfig } from '../../src/agent/config/merge.js';
import { UPSTREAM_FLAGS, classifyUnknownFlag, findUpstreamFlag, ignoredFlagWarning, refusedFlagMessage, upstreamFlags } from '../../src/agent/config/upstream-flags.js';

const fixturePath = fileURLToPath(new URL('../fixtures/kubeadm-config.conf', import.meta.url));
const kubeadm = readFileSync(fixturePath, 'utf8');
const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';

/** Loads HEAD + body (or `text`), expecting a ConfigError; returns its message. */
function refused(body: string, text = HEAD + body): string {
  try {
    loadKubeProxyConfig(text, 'config.conf');
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    return `not a ConfigError: ${String(err)}`;
  }
  return `no error for: ${text}`;
}

t.test('the kubeadm config.conf loads unchanged, with no warnings', async (t) => {
  const { config, warnings } = loadKubeProxyConfig(kubeadm, 'config.conf');
  t.same(warnings, []);
  // What the file says...
  t.equal(config.clientConnection.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  t.equal(config.clusterCIDR, '10.244.0.0/16');
  t.equal(config.bindAddress, '0.0.0.0');
  t.equal(config.mode, '');
  t.equal(config.hostnameOverride, '');
  t.equal(config.iptables.masqueradeAll, false);
  t.equal(config.nodePortAddresses, null);
  t.equal(config.ipvs.scheduler, '');
  t.equal(config.ipvs.excludeCIDRs, null);
  t.equal(config.winkernel.networkName, '');
  // ...and upstream's defaults for every zero/null it writes.
  t.match(config, {
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    configSyncPeriod: 15 * 60_000,
    oomScoreAdj: -999,
    clientConnection: { contentType: 'application/vnd.kubernetes.protobuf', qps: 5, burst: 10 },
    iptables: { masqueradeBit: 14, localhostNodePorts: true, syncPeriod: 30_000, minSyncPeriod: 1000 },
    conntrack: { maxPerCore: 32768, min: 131072, tcpEstablishedTimeout: 86_400_000, tcpCloseWaitTimeout: 3_600_000 },
    logging: { format: 'text', flushFrequency: 5000, verbosity: 0 },
  });
});

t.test('decoding the kubeadm file keeps what it says before defaulting', async (t) => {
  const { config, warnings } = decodeKubeProxyConfig(kubeadm, 'config.conf');
  t.same(warnings, []);
  t.match(config, {
    clientConnection: { qps: 0, burst: 0, contentType: '' },
    iptables: { masqueradeBit: null, localhostNodePorts: null, syncPeriod: 0, minSyncPeriod: 0 },
    conntrack: { maxPerCore: null, min: null, tcpEstablishedTimeout: null, tcpCloseWaitTimeout: null, udpTimeout: 0 },
    logging: { flushFrequency: 0, options: { json: { infoBufferSize: '0' }, text: { infoBufferSize: '0' } } },
    oomScoreAdj: null,
    healthzBindAddress: '',
  });
});

t.test('the fixture is kubeadm\'s shape: every v1alpha1 field but the omitempty ones, no trailing newline', async (t) => {
  const fileKeys = kubeadm.split('\n').filter((l) => /^[a-zA-Z]/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
  const modelKeys = Object.keys(emptyKubeProxyConfig()).filter((k) => k !== 'featureGates' && k !== 'windowsRunAsService');
  t.same([...fileKeys].sort(), [...modelKeys].sort());
  t.notOk(kubeadm.endsWith('\n'));
});

t.test('the same configuration as JSON loads too', async (t) => {
  const json = JSON.stringify({ apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', clusterCIDR: '10.1.0.0/16', iptables: { masqueradeAll: true, syncPeriod: '1m' } });
  const { config } = loadKubeProxyConfig(json, 'config.json');
  t.equal(config.clusterCIDR, '10.1.0.0/16');
  t.equal(config.iptables.masqueradeAll, true);
  t.equal(config.iptables.syncPeriod, 60_000);
});

t.test('YAML 1.1 booleans, as go-yaml reads them', async (t) => {
  const { config } = loadKubeProxyConfig(`${HEAD}iptables:\n  masqueradeAll: yes\n`, 'config.conf');
  t.equal(config.iptables.masqueradeAll, true);
});

t.test('defaults are upstream\'s', async (t) => {
  const d = defaultKubeProxyConfig();
  t.match(d, {
    bindAddress: '0.0.0.0',
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    configSyncPeriod: 900_000,
    oomScoreAdj: -999,
    mode: '',
    clientConnection: { contentType: 'application/vnd.kubernetes.protobuf', qps: 5, burst: 10, kubeconfig: '' },
    iptables: { masqueradeBit: 14, masqueradeAll: false, localhostNodePorts: true, syncPeriod: 30_000, minSyncPeriod: 1000 },
    ipvs: { syncPeriod: 30_000, minSyncPeriod: 0 },
    nftables: { masqueradeBit: 14, syncPeriod: 30_000, minSyncPeriod: 1000 },
    conntrack: { maxPerCore: 32768, min: 131072, tcpEstablishedTimeout: 86_400_000, tcpCloseWaitTimeout: 3_600_000, udpTimeout: 0, udpStreamTimeout: 0 },
    logging: { format: 'text', flushFrequency: 5000 },
  });
  // Defaulting keeps what is set, and is idempotent.
  const set = emptyKubeProxyConfig();
  set.iptables.masqueradeBit = 0;
  set.iptables.syncPeriod = 5000;
  set.conntrack.maxPerCore = 0;
  const ds = withDefaults(set);
  t.match(ds, { iptables: { masqueradeBit: 0, syncPeriod: 5000 }, conntrack: { maxPerCore: 0 } });
  t.same(withDefaults(ds), ds);
  t.equal(set.iptables.minSyncPeriod, 0, 'withDefaults does not modify its argument');
  // IPv6 bindAddress moves the default server addresses to IPv6; a bare IP gets the default port.
  const v6 = emptyKubeProxyConfig();
  v6.bindAddress = '::';
  v6.healthzBindAddress = '10.0.0.1';
  t.match(withDefaults(v6), { healthzBindAddress: '10.0.0.1:10256', metricsBindAddress: '[::1]:10249' });
  t.equal(withDefaults({ ...emptyKubeProxyConfig(), bindAddress: 'fd00::1' }).healthzBindAddress, '[::]:10256');
});

t.test('Go durations', async (t) => {
  t.equal(parseGoDuration('1m30s'), 90_000);
  t.equal(parseGoDuration('-5s'), -5000);
  t.equal(parseGoDuration('0'), 0);
  t.equal(parseGoDuration('30'), undefined);
  t.equal(parseGoDuration(' 30s'), undefined);
  t.equal(formatGoDuration(90_000), '1m30s');
  t.equal(formatGoDuration(86_400_000), '24h0m0s');
  t.equal(formatGoDuration(250), '250ms');
});

t.test('bad values are refused with the file and the field named', async (t) => {
  t.equal(refused('iptables:\n  masqueradeBit: 40\n'), 'config.conf: iptables.masqueradeBit: must be 0-31, got 40');
  t.match(refused('mode: userspace\n'), /^config\.conf: mode: must be iptables, ipvs, nftables or blank.*"userspace"/);
  t.match(refused('mode: kernelspace\n'), /config\.conf: mode: .*Windows/);
  t.match(refused('mode: ipvs\n'), /^config\.conf: mode: "ipvs" .*not implemented yet/);
  t.match(refused('clusterCIDR: 10.244.0.0/33\n'), /^config\.conf: clusterCIDR: "10\.244\.0\.0\/33" is not a valid CIDR/);
  t.match(refused('clusterCIDR: 10.244.0.0/16,10.245.0.0/16\n'), /^config\.conf: clusterCIDR: .*one IPv4 and one IPv6/);
  t.match(refused('clusterCIDR: 10.0.0.0/8,fd00::/48,10.1.0.0/16\n'), /^config\.conf: clusterCIDR: must be one CIDR or a dual-stack pair/);
  t.match(refused('iptables:\n  syncPeriod: soon\n'), /^config\.conf: iptables\.syncPeriod: "soon" is not a duration/);
  t.match(refused('iptables:\n  syncPeriod: 30\n'), /^config\.conf: iptables\.syncPeriod: must be a duration string/);
  t.match(refused('iptables:\n  syncPeriod: -1s\n'), /^config\.conf: iptables\.syncPeriod: must be greater than 0, got -1s/);
  t.match(refused('iptables:\n  syncPeriod: 10s\n  minSyncPeriod: 1m\n'), /^config\.conf: iptables\.syncPeriod: must be at least the minimum sync period \(1m0s\), got 10s/);
  t.match(refused('configSyncPeriod: 5 minutes\n'), /^config\.conf: configSyncPeriod: "5 minutes" is not a duration/);
  t.match(refused('conntrack:\n  tcpCloseWaitTimeout: -1h\n'), /^config\.conf: conntrack\.tcpCloseWaitTimeout: must be 0 or more/);
  t.match(refused('metricsBindAddress: localhost:10249\n'), /^config\.conf: metricsBindAddress: "localhost" is not a valid IP/);
  t.match(refused('healthzBindAddress: 0.0.0.0:99999\n'), /^config\.conf: healthzBindAddress: "99999" is not a valid port/);
  t.match(refused('healthzBindAddress: "::1:10256"\n'), /^config\.conf: healthzBindAddress: must be IP:port/);
  t.match(refused('bindAddress: node-1\n'), /^config\.conf: bindAddress: must be an IP address/);
  t.match(refused('nodePortAddresses: [10.0.0.0/8, bogus]\n'), /^config\.conf: nodePortAddresses\[1\]: must be a CIDR .* or "primary", got "bogus"/);
  t.match(refused('nodePortAddresses: [primary, 10.0.0.0/8]\n'), /^config\.conf: nodePortAddresses\[0\]: "primary" cannot be combined with CIDRs/);
  t.match(refused('oomScoreAdj: -1001\n'), /^config\.conf: oomScoreAdj: must be -1000 to 1000/);
  t.match(refused('detectLocalMode: Everything\n'), /^config\.conf: detectLocalMode: must be ClusterCIDR/);
  t.match(refused('detectLocalMode: BridgeInterface\n'), /^config\.conf: detectLocal\.bridgeInterface: must be set/);
  t.match(refused('hostnameOverride: "   "\n'), /^config\.conf: hostnameOverride: must not be blank/);
  t.match(refused('iptables:\n  masqueradeBit: "14"\n'), /^config\.conf: iptables\.masqueradeBit: must be an integer, got the string "14"/);
  t.match(refused('iptables:\n  masqueradeAll: maybe\n'), /^config\.conf: iptables\.masqueradeAll: must be true or false/);
  t.match(refused('iptables: 3\n'), /^config\.conf: iptables: must be a mapping/);
  t.match(refused('featureGates:\n  Foo: "on please"\n'), /^config\.conf: featureGates\.Foo: must be true or false/);
  // Several problems at once: one line each.
  t.equal(refused('iptables:\n  masqueradeBit: 40\noomScoreAdj: 5000\n').split('\n').length, 2);
});

t.test('unknown fields are refused with their path, as strict decoding does', async (t) => {
  t.equal(refused('foo: bar\n'), 'config.conf: foo: unknown field');
  t.match(refused('iptables:\n  MasqueradeBit: 3\n'), /^config\.conf: iptables\.MasqueradeBit: unknown field .*did you mean "masqueradeBit"/);
  t.match(refused('udpIdleTimeout: 250ms\n'), /^config\.conf: udpIdleTimeout: unknown field \(.*userspace/);
  t.match(refused('conntrack:\n  max: 0\n'), /^config\.conf: conntrack\.max: unknown field/);
  // Upstream's lenient fallback, on request: dropped with one warning.
  const { config, warnings } = loadKubeProxyConfig(`${HEAD}foo: bar\niptables:\n  bar: 1\n  masqueradeAll: true\n`, 'config.conf', { unknownFields: 'warn' });
  t.equal(config.iptables.masqueradeAll, true);
  t.equal(warnings.length, 2);
  t.match(warnings[0], /^config\.conf: foo: unknown field; ignored/);
  t.match(warnings[1], /^config\.conf: iptables\.bar: unknown field; ignored/);
});

t.test('wrong apiVersion or kind is refused, naming them', async (t) => {
  t.equal(refused('', 'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n'), 'config.conf: apiVersion: must be "kubeproxy.config.k8s.io/v1alpha1", got "kubeproxy.config.k8s.io/v1alpha2"');
  t.equal(refused('', 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n'), 'config.conf: kind: must be "KubeProxyConfiguration", got "KubeletConfiguration"');
  t.match(refused('', 'clusterCIDR: 10.0.0.0/8\n'), /config\.conf: apiVersion: must be .* got nothing\nconfig\.conf: kind: must be .* got nothing/);
});

t.test('a YAML syntax error is refused with its line', async (t) => {
  t.match(refused('', `${HEAD}iptables:\n  masqueradeBit: [14\n`), /^config\.conf: line \d+, column \d+: YAML syntax error/);
  t.match(refused('', `${HEAD}mode: iptables\nmode: ipvs\n`), /^config\.conf: line 4, column 1: YAML syntax error: .*unique/i);
});

t.test('no input crashes the loader: anything bad is a ConfigError', async (t) => {
  const inputs = [
    '',
    '   \n',
    '- a\n- b\n',
    '42',
    'null',
    '"just a string"',
    `${HEAD}---\n${HEAD}`,
    `${HEAD}iptables: !!set {a, b}\n`,
    `${HEAD}clientConnection: !!binary aGVsbG8=\n`,
    `${HEAD}featureGates: [a]\n`,
    `${HEAD}nodePortAddresses: {a: b}\n`,
    `${HEAD}logging:\n  vmodule: [{filePattern: "a=b", verbosity: 2}]\n`,
    `${HEAD}logging:\n  flushFrequency: true\n`,
    `${HEAD}a: &a [*a]\n`,
    `${HEAD}x: &x {y: *x}\n`,
    `${HEAD}clientConnection:\n  qps: .inf\n`,
    `${HEAD}clientConnection:\n  burst: 99999999999\n`,
    `${HEAD}__proto__: {polluted: true}\n`,
    `${HEAD}constructor: 1\n`,
    '\u0000\u0001',
    '{{{{',
  ];
  for (const text of inputs) {
    t.throws(() => loadKubeProxyConfig(text, 'config.conf'), ConfigError, JSON.stringify(text));
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  t.equal(refused('__proto__: {polluted: true}\n'), 'config.conf: __proto__: unknown field');
  t.equal(refused('constructor: 1\n'), 'config.conf: constructor: unknown field');
});

t.test('not-implemented fields warn once each, only when not at their default', async (t) => {
  const { config, warnings } = loadKubeProxyConfig(
    `${HEAD}clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
featureGates:
  SomeGate: true
ipvs:
  scheduler: rr
  strictARP: true
conntrack:
  maxPerCore: 0
  min: 131072
  tcpEstablishedTimeout: 24h
nodePortAddresses: [primary]
oomScoreAdj: -999
iptables:
  localhostNodePorts: false
winkernel:
  networkName: cbr0
detectLocalMode: NodeCIDR
logging:
  format: json
  verbosity: 4
bindAddress: 192.168.1.10
`,
    'config.conf',
  );
  t.equal(config.clusterCIDR, '10.244.0.0/16,fd00:10:244::/56');
  t.equal(config.logging.verbosity, 4);
  const fields = warnings.map((w) => /^config\.conf: ([^:]+):/.exec(w)?.[1]);
  t.same([...fields].sort(), [
    'bindAddress',
    'conntrack.maxPerCore',
    'detectLocalMode',
    'featureGates',
    'ipvs.scheduler',
    'ipvs.strictARP',
    'logging.format',
    'winkernel.networkName',
  ]);
  const about = (field: string): string | undefined => warnings.find((w) => w.startsWith(`config.conf: ${field}: `));
  t.match(about('ipvs.scheduler'), /"rr" is set, but only used in ipvs mode/);
  t.match(about('conntrack.maxPerCore'), /0 is set, but kube-proxy-ts does not tune conntrack/);
  t.match(about('featureGates'), /SomeGate=true/);
  t.equal(about('clusterCIDR'), undefined, 'a dual-stack clusterCIDR is implemented: no warning');
  t.match(about('bindAddress'), /"192\.168\.1\.10" is set, but not implemented/);
  // Implemented fields never warn.
  const quiet = loadKubeProxyConfig(`${HEAD}mode: iptables\nhostnameOverride: node-1\niptables:\n  masqueradeAll: true\n  masqueradeBit: 5\n  syncPeriod: 10s\n  minSyncPeriod: 0s\nmetricsBindAddress: 0.0.0.0:10249\nclientConnection:\n  kubeconfig: /k\n  qps: 50\n  burst: 100\nconfigSyncPeriod: 1m\nbindAddress: "::"\ndetectLocalMode: ClusterCIDR\n`, 'config.conf');
  t.same(quiet.warnings, []);
});

t.test('merge without --config: defaults, then the flags passed', async (t) => {
  const { settings, warnings } = mergeConfig(undefined, {});
  t.same(warnings, []);
  t.same(settings, {
    mode: 'iptables',
    clusterCIDR: undefined,
    hostnameOverride: undefined,
    masqueradeAll: false,
    masqueradeBit: 14,
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 1000,
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    kubeconfig: undefined,
    qps: 5,
    burst: 10,
    configSyncPeriodMs: 900_000,
    verbosity: 0,
    nodePortAddresses: [],
    localhostNodePorts: true,
  });
  const r = mergeConfig(undefined, {
    clusterCIDR: '10.244.0.0/16',
    masqueradeAll: true,
    masqueradeBit: 3,
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 0,
    hostnameOverride: ' Node-1 ',
    healthzBindAddress: '127.0.0.1',
    metricsBindAddress: '',
    kubeconfig: '/etc/kubernetes/proxy.conf',
    kubeAPIQPS: 20,
    kubeAPIBurst: 40,
    configSyncPeriodMs: 60_000,
    verbosity: 2,
  });
  t.same(r.warnings, []);
  t.match(r.settings, {
    clusterCIDR: '10.244.0.0/16',
    masqueradeAll: true,
    masqueradeBit: 3,
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 0,
    hostnameOverride: 'node-1',
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '',
    kubeconfig: '/etc/kubernetes/proxy.conf',
    qps: 20,
    burst: 40,
    configSyncPeriodMs: 60_000,
    verbosity: 2,
  });
  t.throws(() => mergeConfig(undefined, { syncPeriodMs: 1000, minSyncPeriodMs: 5000 }), /^command line: --iptables-sync-period: must be at least the minimum sync period \(5s\)/);
  t.throws(() => mergeConfig(undefined, { hostnameOverride: '   ' }), /^command line: --hostname-override: must not be blank/);
  t.throws(() => mergeConfig(undefined, { masqueradeBit: 32 }), /^command line: --iptables-masquerade-bit: must be 0-31, got 32/);
  t.throws(() => mergeConfig(undefined, { proxyMode: 'ipvs' }), /^command line: --proxy-mode: "ipvs" .*not implemented yet/);
  t.match(mergeConfig(undefined, { clusterCIDR: 'fd00::/48,10.0.0.0/8' }), { settings: { clusterCIDR: '10.0.0.0/8', clusterCIDR6: 'fd00::/48' }, warnings: [] });
});

t.test('nftables mode takes its masquerade and period fields from its own section, as upstream', async (t) => {
  const flags = mergeConfig(undefined, { proxyMode: 'nftables', syncPeriodMs: 5000, minSyncPeriodMs: 200, masqueradeAll: true, masqueradeBit: 3 }).settings;
  t.match(flags, { mode: 'nftables', syncPeriodMs: 5000, minSyncPeriodMs: 200, masqueradeAll: true }, 'the period flags and --masquerade-all apply to every mode');
  t.equal(flags.masqueradeBit, 14, '--iptables-masquerade-bit is the iptables section only');
  const file = loadKubeProxyConfig(
    'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\niptables:\n  syncPeriod: 7s\n  masqueradeBit: 5\nnftables:\n  syncPeriod: 11s\n  minSyncPeriod: 2s\n  masqueradeBit: 9\n  masqueradeAll: true\n',
    'kp.yaml',
  );
  t.same(file.warnings, [], 'the nftables fields are honoured, so no warning');
  t.match(mergeConfig(file.config, {}).settings, { mode: 'nftables', syncPeriodMs: 11_000, minSyncPeriodMs: 2000, masqueradeBit: 9, masqueradeAll: true });
  t.throws(
    () => mergeConfig(loadKubeProxyConfig('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nnftables:\n  masqueradeBit: 40\n', 'kp.yaml').config, {}),
    /nftables\.masqueradeBit: must be 0-31, got 40/,
  );
});

t.test('merge with --config: the file wins, except --hostname-override and --v, field by field', async (t) => {
  const { config } = loadKubeProxyConfig(
    `${HEAD}hostnameOverride: From-File\nclusterCIDR: 10.100.0.0/16\niptables:\n  masqueradeAll: true\n  masqueradeBit: 9\n  syncPeriod: 45s\nlogging:\n  verbosity: 3\nclientConnection:\n  kubeconfig: /from/file\n`,
    'config.conf',
  );
  // Nothing passed: all from the file (and upstream defaults for the rest).
  t.match(mergeConfig(config, {}), {
    settings: { hostnameOverride: 'from-file', clusterCIDR: '10.100.0.0/16', masqueradeAll: true, masqueradeBit: 9, syncPeriodMs: 45_000, minSyncPeriodMs: 1000, verbosity: 3, kubeconfig: '/from/file' },
    warnings: [],
  });
  // --hostname-override alone: only the host name changes.
  const h = mergeConfig(config, { hostnameOverride: 'Node-7' });
  t.match(h.settings, { hostnameOverride: 'node-7', verbosity: 3, masqueradeBit: 9, clusterCIDR: '10.100.0.0/16' });
  t.same(h.warnings, []);
  // --v alone: only the verbosity changes.
  t.match(mergeConfig(config, { verbosity: 5 }).settings, { hostnameOverride: 'from-file', verbosity: 5, masqueradeBit: 9 });
  // An empty --hostname-override does not override (upstream: len == 0).
  t.equal(mergeConfig(config, { hostnameOverride: '' }).settings.hostnameOverride, 'from-file');
  // Every other flag is ignored, with one warning naming the config field.
  const r = mergeConfig(config, { masqueradeBit: 2, clusterCIDR: '10.9.0.0/16', syncPeriodMs: 5000, kubeconfig: '/from/flag', proxyMode: 'iptables' });
  t.match(r.settings, { masqueradeBit: 9, clusterCIDR: '10.100.0.0/16', syncPeriodMs: 45_000, kubeconfig: '/from/file' });
  t.equal(r.warnings.length, 5);
  t.match(r.warnings, [
    /^--proxy-mode is ignored because --config is given .*set mode in the config file/,
    /^--cluster-cidr is ignored .*set clusterCIDR/,
    /^--iptables-masquerade-bit is ignored .*set iptables\.masqueradeBit/,
    /^--iptables-sync-period is ignored .*set iptables\.syncPeriod/,
    /^--kubeconfig is ignored .*set clientConnection\.kubeconfig/,
  ]);
  // A file without hostnameOverride: the host name is the caller's to find.
  t.equal(mergeConfig(loadKubeProxyConfig(kubeadm, 'config.conf').config, {}).settings.hostnameOverride, undefined);
});

t.test('upstream flags: refused ones get a clear message, nonsense stays an unknown option', async (t) => {
  t.equal(refusedFlagMessage('--ipvs-scheduler'), '--ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet');
  t.equal(refusedFlagMessage('ipvs-scheduler'), '--ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet');
  t.equal(classifyUnknownFlag('--ipvs-scheduler=rr'), 'error: --ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet\n');
  t.equal(classifyUnknownFlag('--ipvs_scheduler'), 'error: --ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet\n');
  t.match(classifyUnknownFlag('--detect-local-mode=NodeCIDR'), /^error: --detect-local-mode is an upstream kube-proxy flag that kube-proxy-ts does not support yet \(local traffic is detected with --cluster-cidr only\)\n$/);
  t.match(classifyUnknownFlag('--windows-service'), /^error: --windows-service is a Windows-only upstream kube-proxy flag/);
  t.equal(classifyUnknownFlag('--frobnicate'), "error: unknown option '--frobnicate'\n");
  t.equal(classifyUnknownFlag('--masqerade-all', "error: unknown option '--masqerade-all'\n(Did you mean --masquerade-all?)"), "error: unknown option '--masqerade-all'\n(Did you mean --masquerade-all?)\n");
  t.equal(classifyUnknownFlag('-x'), "error: unknown option '-x'\n");
  t.match(classifyUnknownFlag('--conntrack-max-per-core=0'), /should accept, but this build does not register it/);
  t.match(ignoredFlagWarning('--conntrack-max-per-core'), /^--conntrack-max-per-core is an upstream kube-proxy flag that kube-proxy-ts accepts but ignores/);
});

t.test('the upstream flag table', async (t) => {
  const names = UPSTREAM_FLAGS.map((f) => f.name);
  t.equal(new Set(names).size, names.length, 'no duplicates');
  for (const f of ['proxy-mode', 'hostname-override', 'cluster-cidr', 'masquerade-all', 'iptables-masquerade-bit', 'iptables-sync-period', 'iptables-min-sync-period', 'cleanup', 'v', 'config']) {
    t.equal(findUpstreamFlag(`--${f}`)?.support, 'implemented', f);
  }
  t.equal(findUpstreamFlag('-v')?.name, 'v');
  t.equal(findUpstreamFlag('-h')?.name, 'help');
  t.equal(findUpstreamFlag('--dry-run'), undefined, 'kube-proxy-ts\'s own flags are not upstream\'s');
  t.ok(upstreamFlags('ignored').every((f) => f.support === 'ignored'));
  // Every config field a flag names exists in the model.
  const model = emptyKubeProxyConfig() as unknown as Record<string, unknown>;
  for (const f of UPSTREAM_FLAGS) {
    if (!f.configField) continue;
    let v: unknown = model;
    for (const part of f.configField.split('.')) v = (v as Record<string, unknown>)[part];
    t.not(v, undefined, `${f.name} -> ${f.configField}`);
  }
});
