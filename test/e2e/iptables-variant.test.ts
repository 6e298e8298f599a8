/**
 * The agent writes its rules with the iptables variant the host uses: on a
 * host whose rules are in iptables-legacy, into legacy; otherwise into the
 * system default (nft on Debian). And --cleanup finds them there.
 */
import t from 'tap';
import { execa } from 'execa';
import { join } from 'node:path';
import { agentMain, repoRoot } from '../../scripts/netns/agent.js';
import { nodeCmd } from '../../scripts/netns/topology.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program iptables');
  process.exit(0);
}

const ns = `kpt-variant-${process.pid}`;
const inNs = (cmd: string[], input?: string) => execa('ip', ['netns', 'exec', ns, ...cmd], { reject: false, ...(input ? { input } : {}) });
const kubeRules = async (save: string): Promise<number> => (await inNs([save])).stdout.split('\n').filter((l) => /^-A KUBE-/.test(l)).length;
const agent = (...args: string[]) => inNs(nodeCmd(agentMain(), `--manifests=${join(repoRoot(), 'examples')}`, '--hostname-override=node-1', ...args));

t.beforeEach(async () => {
  await execa('ip', ['netns', 'add', ns]);
});
t.afterEach(async () => {
  await execa('ip', ['netns', 'del', ns], { reject: false });
});

t.test('a host using iptables-legacy gets legacy rules', async (t) => {
  await inNs(['iptables-legacy', '-N', 'HOST-FIREWALL']);
  await inNs(['iptables-legacy', '-A', 'HOST-FIREWALL', '-j', 'ACCEPT']);
  const r = await agent('--once');
  t.equal(r.exitCode, 0, r.stderr);
  t.ok((await kubeRules('iptables-legacy-save')) > 10, 'rules in legacy');
  t.equal(await kubeRules('iptables-nft-save'), 0, 'none in nft');
  t.equal((await inNs(nodeCmd(agentMain(), '--cleanup'))).exitCode, 0);
  t.equal(await kubeRules('iptables-legacy-save'), 0, 'cleanup found them');
  t.match((await inNs(['iptables-legacy-save'])).stdout, /-A HOST-FIREWALL -j ACCEPT/, 'the host rule survives');
});

t.test('a fresh host gets the system default (nft on Debian)', async (t) => {
  const r = await agent('--once');
  t.equal(r.exitCode, 0, r.stderr);
  t.ok((await kubeRules('iptables-nft-save')) > 10, 'rules in nft');
  t.equal(await kubeRules('iptables-legacy-save'), 0, 'none in legacy');
});
