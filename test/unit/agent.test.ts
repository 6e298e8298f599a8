import t from 'tap';
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runOneShot, startAgent } from '../../src/agent/agent.js';
import { memoryLogger } from '../../src/agent/log.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { fakeIptables } from '../helpers/fake-iptables.js';

const svcYaml = (name: string, ip: string): string => `apiVersion: v1
kind: Service
metadata: { namespace: ns, name: ${name} }
spec: { clusterIP: ${ip}, ports: [{ name: http, port: 80 }] }
`;
const sliceYaml = (name: string, ips: string[]): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { namespace: ns, name: ${name}-1, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [${ips.map((ip) => `{ addresses: [${ip}] }`).join(', ')}]
`;


function options(dir: string, over: Partial<AgentOptions> = {}): AgentOptions {
  return { proxyMode: 'iptables', manifests: dir, hostnameOverride: 'node-1', clusterCIDR: '10.244.0.0/16', masqueradeAll: false, masqueradeBit: 14, syncPeriodMs: 60_000, minSyncPeriodMs: 50, nodePortAddresses: [], localhostNodePorts: true, healthzBindAddress: '', metricsBindAddress: '', once: false, dryRun: false, cleanup: false, verbosity: 4, ...over };
}

t.test('--dry-run prints the input and applies nothing', async (t) => {
  const dir = t.testdir({ 'a.yaml': `${svcYaml('web', '10.96.0.10')}---\n${sliceYaml('web', ['10.244.1.2'])}` });
  const tool = fakeIptables();
  let printed = '';
  const code = await runOneShot(options(dir, { dryRun: true }), { log: memoryLogger(), out: (s) => (printed += s), iptables: tool });
  t.equal(code, 0);
  t.same(tool.inputs, []);
  t.match(printed, /-A KUBE-SEP-\w+ -m comment --comment ns\/web:http -m tcp -p tcp -j DNAT --to-destination 10\.244\.1\.2:8080/);
});

t.test('a failed restore keeps changes pending, logs the failing line, and is retried in full', async (t) => {
  const dir = t.testdir({ 'a.yaml': `${svcYaml('web', '10.96.0.10')}---\n${sliceYaml('web', ['10.244.1.2'])}` });
  const tool = fakeIptables();
  tool.failNext = 1;
  const log = memoryLogger(4);
  const agent = await startAgent(options(dir), { log, out: () => undefined, iptables: tool });
  t.teardown(() => agent.stop());
  await agent.ready;
  t.equal(tool.inputs.length, 1, 'the retry applied');
  t.ok(log.lines.some((l) => / E "sync failed; the previous rules stay in place".*line 3 failed/.test(l)), 'error logged with the tool message');
  t.ok(log.lines.some((l) => /sync failed.*at input line 3: :KUBE-/.test(l)), 'failing input line logged');
  t.match(tool.inputs[0], /10\.244\.1\.2:8080/);
});

t.test('manifest changes reach the backend; bad objects are skipped with a warning', async (t) => {
  const dir = t.testdir({ 'svc.yaml': svcYaml('web', '10.96.0.10'), 'eps.yaml': sliceYaml('web', ['10.244.1.2', '10.244.1.3']) });
  const tool = fakeIptables();
  const log = memoryLogger(4);
  const agent = await startAgent(options(dir), { log, out: () => undefined, iptables: tool });
  t.teardown(() => agent.stop());
  await agent.ready;
  t.match(tool.current(), /10\.244\.1\.3:8080/);
  const collections = (when: string): number => log.lines.filter((l) => l.includes('"collected garbage"') && l.includes(`when="${when}"`)).length;
  t.equal(collections('after the initial lists'), 1, 'a full collection once the initial state is loaded');
  t.equal(collections('after a full sync'), 1, 'and one after the first (full) sync');

  const waitFor = async (pred: (s: string) => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      if (pred(tool.current() ?? '')) return;
      await sleep(50);
    }
    t.fail(`timed out waiting for ${what}`);
  };
  await writeFile(join(dir, 'eps.yaml'), sliceYaml('web', ['10.244.1.2']));
  await waitFor((s) => !s.includes('10.244.1.3'), 'endpoint removal');
  t.pass('endpoint removed');
  t.equal(collections('after a full sync'), 1, 'none after a partial sync');

  await writeFile(join(dir, 'bad.yaml'), svcYaml('other', '10.96.0.999'));
  await writeFile(join(dir, 'svc2.yaml'), svcYaml('second', '10.96.0.12'));
  await waitFor((s) => s.includes('10.96.0.12'), 'second service');
  t.ok(log.lines.some((l) => /W "skipping invalid manifest object".*bad\.yaml.*Service ns\/other.*10\.96\.0\.999/.test(l)), 'warning names file, object and reason');
  t.match(tool.current(), /10\.244\.1\.2:8080/, 'the rest keeps its rules');

  await rm(join(dir, 'svc.yaml'));
  await waitFor((s) => !s.includes('10.96.0.10'), 'service deletion');
  t.pass('service deleted');
});
