import t from 'tap';
import { parseArgs } from '../../src/agent/options.js';

const dir = t.testdir({ 'svc.yaml': '' });

t.test('defaults match upstream', async (t) => {
  const r = parseArgs([`--manifests=${dir}`, '--hostname-override=Node-1']);
  t.equal(r.kind, 'options');
  if (r.kind !== 'options') return;
  t.match(r.options, { proxyMode: 'iptables', hostnameOverride: 'node-1', masqueradeAll: false, masqueradeBit: 14, syncPeriodMs: 30_000, minSyncPeriodMs: 1000, once: false, dryRun: false, cleanup: false, verbosity: 0 });
  t.equal(r.options.clusterCIDR, undefined);
});

t.test('flags are parsed', async (t) => {
  const r = parseArgs([`--manifests=${dir}`, '--cluster-cidr=10.244.0.1/16', '--masquerade-all', '--iptables-masquerade-bit=5', '--iptables-sync-period=1m30s', '--iptables-min-sync-period=250ms', '--once', '--v=4']);
  t.equal(r.kind, 'options');
  if (r.kind === 'options') t.match(r.options, { clusterCIDR: '10.244.0.0/16', masqueradeAll: true, masqueradeBit: 5, syncPeriodMs: 90_000, minSyncPeriodMs: 250, once: true, verbosity: 4 });
});

t.test('--nodeport-addresses and --iptables-localhost-nodeports', async (t) => {
  const r = parseArgs([`--manifests=${dir}`, '--nodeport-addresses=203.0.113.0/24, 10.0.0.0/8', '--iptables-localhost-nodeports=false']);
  t.match(r, { kind: 'options', options: { nodePortAddresses: ['203.0.113.0/24', '10.0.0.0/8'], localhostNodePorts: false } });
  t.match(parseArgs([`--manifests=${dir}`]), { kind: 'options', options: { nodePortAddresses: [], localhostNodePorts: true } });
  t.match(parseArgs([`--manifests=${dir}`, '--nodeport-addresses=primary,10.0.0.0/8']), { kind: 'exit', code: 2, output: /primary/ });
  t.match(parseArgs([`--manifests=${dir}`, '--iptables-localhost-nodeports=maybe']), { kind: 'exit', code: 2, output: /--iptables-localhost-nodeports: must be true or false/ });
});

t.test('--cleanup needs no source; without --manifests the API server is the source', async (t) => {
  t.equal(parseArgs(['--cleanup']).kind, 'options');
  const r = parseArgs(['--kubeconfig=/etc/kubernetes/proxy.conf', '--master=https://10.0.0.1:6443', '--service-proxy-name=mine']);
  t.equal(r.kind, 'options');
  if (r.kind === 'options') t.match(r.options, { kubeconfig: '/etc/kubernetes/proxy.conf', master: 'https://10.0.0.1:6443', serviceProxyName: 'mine', healthzBindAddress: '0.0.0.0:10256', metricsBindAddress: '127.0.0.1:10249' });
});

t.test('upstream flags that change no packet path are accepted with a warning', async (t) => {
  const r = parseArgs([`--manifests=${dir}`, '--conntrack-max-per-core=0', '--oom-score-adj=-999']);
  t.equal(r.kind, 'options');
  if (r.kind === 'options') {
    t.equal(r.warnings.length, 2);
    t.match(r.warnings.join('\n'), /--conntrack-max-per-core .*accepts but ignores/);
  }
});

t.test('--config loads kubeadm\'s file; as upstream, only --hostname-override and --v win over it', async (t) => {
  const cfgDir = t.testdir({
    'config.conf': `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.244.0.0/16
iptables:
  masqueradeBit: 9
  syncPeriod: 45s
metricsBindAddress: 0.0.0.0:10249
`,
  });
  const r = parseArgs([`--config=${cfgDir}/config.conf`, `--manifests=${dir}`, '--hostname-override=Node-7', '--iptables-masquerade-bit=3', '--v=2']);
  t.equal(r.kind, 'options');
  if (r.kind !== 'options') return;
  t.match(r.options, { clusterCIDR: '10.244.0.0/16', masqueradeBit: 9, syncPeriodMs: 45_000, metricsBindAddress: '0.0.0.0:10249', hostnameOverride: 'node-7', verbosity: 2 });
  t.match(r.warnings.join('\n'), /--iptables-masquerade-bit is ignored because --config is given/);
  const bad = parseArgs([`--config=${cfgDir}/missing.conf`]);
  t.match(bad, { kind: 'exit', code: 2, output: /--config: cannot read/ });
});

const bad: Array<[string[], RegExp]> = [
  [['--proxy-mode=userspace', `--manifests=${dir}`], /--proxy-mode.*userspace/],
  [['--cluster-cidr=10.244.0.0/33', `--manifests=${dir}`], /--cluster-cidr.*10\.244\.0\.0\/33/],
  [['--iptables-masquerade-bit=32', `--manifests=${dir}`], /--iptables-masquerade-bit.*0 to 31/],
  [['--iptables-sync-period=soon', `--manifests=${dir}`], /--iptables-sync-period.*not a duration/],
  [['--iptables-sync-period=0s', `--manifests=${dir}`], /--iptables-sync-period: must be greater than 0/],
  [['--ipvs-scheduler=rr', `--manifests=${dir}`], /--ipvs-scheduler is an upstream kube-proxy flag that kube-proxy-ts does not support yet/],
  [['--manifests=/tmp', '--kubeconfig=/etc/kubeconfig'], /--manifests cannot be combined/],
  [['--no-such-flag', `--manifests=${dir}`], /unknown option '--no-such-flag'/],
  [['--manifests=/nonexistent/dir'], /--manifests.*not a readable directory/],
  [['--v=loud', `--manifests=${dir}`], /--v: must be/],
  [['--once', '--dry-run', `--manifests=${dir}`], /cannot be used together/],
];
for (const [args, msg] of bad) {
  t.test(`bad flags exit 2: ${args.join(' ')}`, async (t) => {
    const r = parseArgs(args);
    t.equal(r.kind, 'exit');
    if (r.kind === 'exit') {
      t.equal(r.code, 2);
      t.match(r.output, msg);
    }
  });
}

t.test('--help exits 0 and lists every flag', async (t) => {
  const r = parseArgs(['--help']);
  t.equal(r.kind, 'exit');
  if (r.kind !== 'exit') return;
  t.equal(r.code, 0);
  for (const f of ['--proxy-mode', '--manifests', '--hostname-override', '--cluster-cidr', '--masquerade-all', '--once', '--dry-run', '--cleanup', '--v']) t.match(r.output, f);
});
