/** SIGINT, like SIGTERM (checked in test/e2e/suites/agent-traffic.ts), ends the agent with exit 0 and leaves its rules. */
import t from 'tap';
import { execa } from 'execa';
import { join } from 'node:path';
import { agentMain, repoRoot } from '../../scripts/netns/agent.js';
import { nodeCmd } from '../../scripts/netns/topology.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'skipped: needs root to create network namespaces and program iptables');
  process.exit(0);
}

const ns = `kpt-signal-${process.pid}`;
await execa('ip', ['netns', 'add', ns]);
t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }));

t.test('SIGINT exits 0 and leaves the rules in place', async (t) => {
  const args = [`--manifests=${join(repoRoot(), 'examples')}`, '--hostname-override=node-1', '--healthz-bind-address=', '--metrics-bind-address=', '--v=2'];
  const agent = execa('ip', ['netns', 'exec', ns, ...nodeCmd(agentMain(), ...args)], { reject: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the agent never synced')), 15_000);
    agent.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('"synced rules"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  process.kill(agent.pid!, 'SIGINT');
  const r = await agent;
  t.equal(r.exitCode, 0, `exit 0 (got ${String(r.exitCode)}, signal ${String(r.signal)})`);
  t.match(r.stderr, /shutting down; rules stay in place.*signal=SIGINT/);
  const saved = (await execa('ip', ['netns', 'exec', ns, 'iptables-save'])).stdout;
  t.match(saved, /demo\/web:http/, 'rules left in place');
});
