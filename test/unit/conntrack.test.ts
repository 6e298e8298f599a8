import t from 'tap';
import { memoryLogger } from '../../src/agent/log.js';
import { conntrackArgs, planConntrackCleanup, runConntrackCleanup } from '../../src/agent/conntrack/index.js';
import type { ConntrackDeletion, ConntrackExec } from '../../src/agent/conntrack/index.js';
import type { Endpoint, ServicePort } from '../../src/agent/model/types.js';
import { service, slice, snapshotOf } from '../helpers/model.js';

const KEY = 'ns/dns:dns/UDP';

function ep(address: string, over: Partial<Endpoint> = {}): Endpoint {
  return { address, port: 5353, ready: true, serving: true, terminating: false, nodeName: 'node-1', zone: '', isLocal: true, ...over };
}

function sp(over: Partial<ServicePort> = {}): ServicePort {
  return {
    key: KEY, displayName: 'ns/dns:dns', namespace: 'ns', name: 'dns', portName: 'dns', protocol: 'UDP', family: 'IPv4',
    type: 'LoadBalancer', clusterIP: '10.96.0.53', port: 53, nodePort: 30053, externalIPs: ['192.0.2.53'], loadBalancerIPs: ['198.51.100.53'],
    loadBalancerSourceRanges: [], externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None',
    sessionAffinityTimeoutSeconds: 10800, healthCheckNodePort: 0, endpoints: [ep('10.244.1.2'), ep('10.244.1.3')], ...over,
  };
}

const m = (...sps: ServicePort[]): Map<string, ServicePort> => new Map(sps.map((s) => [s.key, s]));

/** Compact, order-independent view of a plan. */
function show(ds: ConntrackDeletion[]): string[] {
  return ds
    .map((d) => `${d.reason} ${d.protocol} ${d.origDst ?? '*'}:${d.origPortDst}${d.replySrc === undefined ? '' : ` -> ${d.replySrc}:${d.replyPortSrc}`}${d.family === 'IPv6' ? ' v6' : ''}`)
    .sort();
}

t.test('conntrack arguments', async (t) => {
  t.same(
    conntrackArgs({ family: 'IPv4', protocol: 'udp', origDst: '10.96.0.53', origPortDst: 53, replySrc: '10.244.1.2', replyPortSrc: 5353, reason: 'endpoint-gone', service: 's' }),
    ['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53', '--reply-src', '10.244.1.2', '--reply-port-src', '5353'],
  );
  t.same(conntrackArgs({ family: 'IPv4', protocol: 'udp', origPortDst: 30053, reason: 'newly-active', service: 's' }), ['-D', '-p', 'udp', '--orig-port-dst', '30053']);
  t.same(
    conntrackArgs({ family: 'IPv6', protocol: 'sctp', origDst: 'fd00::53', origPortDst: 53, reason: 'frontend-removed', service: 's' }),
    ['-D', '-p', 'sctp', '--orig-dst', 'fd00::53', '--orig-port-dst', '53', '-f', 'ipv6'],
  );
});

t.test('an endpoint removed: its entries on every service IP and the NodePort', async (t) => {
  const next = sp({ endpoints: [ep('10.244.1.3')] });
  t.same(show(planConntrackCleanup(m(sp()), m(next), [KEY])), [
    'endpoint-gone udp *:30053 -> 10.244.1.2:5353',
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353',
    'endpoint-gone udp 192.0.2.53:53 -> 10.244.1.2:5353',
    'endpoint-gone udp 198.51.100.53:53 -> 10.244.1.2:5353',
  ]);
});

t.test('serving is what counts (not ready, not policy), as upstream', async (t) => {
  const notServing = sp({ endpoints: [ep('10.244.1.2', { ready: false, serving: false, terminating: true }), ep('10.244.1.3')] });
  t.equal(planConntrackCleanup(m(sp()), m(notServing), [KEY]).length, 4, 'serving → not serving: deleted');

  const terminatingServing = sp({ endpoints: [ep('10.244.1.2', { ready: false, serving: true, terminating: true }), ep('10.244.1.3')] });
  t.same(planConntrackCleanup(m(sp()), m(terminatingServing), [KEY]), [], 'terminating but still serving: flows kept');

  const policy = sp({ externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local', endpoints: [ep('10.244.1.2', { isLocal: false }), ep('10.244.1.3')] });
  t.same(planConntrackCleanup(m(sp()), m(policy), [KEY]), [], 'a traffic policy change does not break flows');

  const wasNotServing = sp({ endpoints: [ep('10.244.1.2', { ready: false, serving: false }), ep('10.244.1.3')] });
  t.same(planConntrackCleanup(m(wasNotServing), m(sp({ endpoints: [ep('10.244.1.3')] })), [KEY]), [], 'an endpoint that was not serving had no flows');
});

t.test('a target port change: the old ip:port is gone', async (t) => {
  const next = sp({ externalIPs: [], loadBalancerIPs: [], nodePort: 0, endpoints: [ep('10.244.1.2', { port: 5354 }), ep('10.244.1.3')] });
  const prev = sp({ externalIPs: [], loadBalancerIPs: [], nodePort: 0 });
  t.same(show(planConntrackCleanup(m(prev), m(next), [KEY])), ['endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353']);
});

t.test('all endpoints gone: their entries go (traffic is then rejected)', async (t) => {
  const prev = sp({ externalIPs: [], loadBalancerIPs: [], nodePort: 0 });
  const next = sp({ externalIPs: [], loadBalancerIPs: [], nodePort: 0, endpoints: [] });
  t.same(show(planConntrackCleanup(m(prev), m(next), [KEY])), [
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353',
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.3:5353',
  ]);
});

t.test('newly active: every entry to every frontend, once', async (t) => {
  const empty = sp({ endpoints: [] });
  const whole = [
    'newly-active udp *:30053',
    'newly-active udp 10.96.0.53:53',
    'newly-active udp 192.0.2.53:53',
    'newly-active udp 198.51.100.53:53',
  ];
  t.same(show(planConntrackCleanup(m(empty), m(sp()), [KEY, KEY])), whole, 'no serving endpoint → some');
  t.same(show(planConntrackCleanup(m(), m(sp()), [KEY])), whole, 'a new service port with endpoints');
  t.same(planConntrackCleanup(m(), m(empty), [KEY]), [], 'a new service port without endpoints: nothing to fix');
  const onlyNotServing = sp({ endpoints: [ep('10.244.1.2', { ready: false, serving: false })] });
  t.same(show(planConntrackCleanup(m(onlyNotServing), m(sp()), [KEY])), whole, 'no *serving* endpoint before counts as inactive');
});

t.test('frontends removed: every entry to them', async (t) => {
  t.same(show(planConntrackCleanup(m(sp()), m(), [KEY])), [
    'frontend-removed udp *:30053',
    'frontend-removed udp 10.96.0.53:53',
    'frontend-removed udp 192.0.2.53:53',
    'frontend-removed udp 198.51.100.53:53',
  ], 'a deleted service port');

  const next = sp({ externalIPs: ['192.0.2.54'], nodePort: 30054, endpoints: [ep('10.244.1.3')] });
  t.same(show(planConntrackCleanup(m(sp()), m(next), [KEY])), [
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353',
    'endpoint-gone udp 198.51.100.53:53 -> 10.244.1.2:5353',
    'frontend-removed udp *:30053',
    'frontend-removed udp 192.0.2.53:53',
    'newly-active udp *:30054',
    'newly-active udp 192.0.2.54:53',
  ], 'an external IP and the NodePort replaced, an endpoint removed');
});

t.test('per frontend, over all changed service ports: a renamed port keeps its flows', async (t) => {
  const renamed = sp({ key: 'ns/dns:domain/UDP', displayName: 'ns/dns:domain', portName: 'domain' });
  const keys = [KEY, renamed.key];
  t.same(planConntrackCleanup(m(sp()), m(renamed), keys), [], 'same frontends, same serving endpoints: nothing');
  const moved = sp({ key: 'ns/dns:domain/UDP', displayName: 'ns/dns:domain', portName: 'domain', endpoints: [ep('10.244.1.3')], externalIPs: [], loadBalancerIPs: [], nodePort: 0 });
  t.same(show(planConntrackCleanup(m(sp()), m(moved), keys)), [
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353',
    'frontend-removed udp *:30053',
    'frontend-removed udp 192.0.2.53:53',
    'frontend-removed udp 198.51.100.53:53',
  ], 'what changed, and only that');
  t.equal(planConntrackCleanup(m(sp()), m(moved), keys).find((d) => d.reason === 'endpoint-gone')?.service, 'ns/dns:domain', 'named after the new service port');
});

t.test('only changed UDP service ports are looked at', async (t) => {
  const next = sp({ endpoints: [ep('10.244.1.3')] });
  t.same(planConntrackCleanup(m(sp()), m(next), []), [], 'not in the change set');
  t.same(planConntrackCleanup(m(sp()), m(sp()), [KEY]), [], 'in the change set but unchanged');
  const tcp = (o: Partial<ServicePort>) => sp({ key: 'ns/dns:dns/TCP', protocol: 'TCP', ...o });
  t.same(planConntrackCleanup(m(tcp({})), m(tcp({ endpoints: [] })), ['ns/dns:dns/TCP']), [], 'TCP is never cleaned');
  const sctp = (o: Partial<ServicePort>) => sp({ key: 'ns/dns:dns/SCTP', protocol: 'SCTP', externalIPs: [], loadBalancerIPs: [], nodePort: 0, ...o });
  t.same(planConntrackCleanup(m(sctp({})), m(sctp({ endpoints: [ep('10.244.1.3')] })), ['ns/dns:dns/SCTP']), [], 'SCTP not by default (as upstream)');
  t.same(
    show(planConntrackCleanup(m(sctp({})), m(sctp({ endpoints: [ep('10.244.1.3')] })), ['ns/dns:dns/SCTP'], { protocols: ['UDP', 'SCTP'] })),
    ['endpoint-gone sctp 10.96.0.53:53 -> 10.244.1.2:5353'],
    'SCTP when asked',
  );
});

t.test('IPv6', async (t) => {
  const v6 = (o: Partial<ServicePort>) => sp({ family: 'IPv6', clusterIP: 'fd00:96::53', externalIPs: [], loadBalancerIPs: [], nodePort: 0, ...o });
  const ds = planConntrackCleanup(m(v6({ endpoints: [ep('fd00:244::2'), ep('fd00:244::3')] })), m(v6({ endpoints: [ep('fd00:244::3')] })), [KEY]);
  t.same(show(ds), ['endpoint-gone udp fd00:96::53:53 -> fd00:244::2:5353 v6']);
  t.same(conntrackArgs(ds[0]!).slice(-2), ['-f', 'ipv6']);
});

t.test('through the real store: keys and endpoints as the snapshot has them', async (t) => {
  const svc = service({ name: 'dns', type: 'NodePort', clusterIPs: ['10.96.0.53'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053, targetPort: 5353 }] });
  const ports = [{ name: 'dns', protocol: 'UDP' as const, port: 5353 }];
  const before = snapshotOf([svc], [slice('dns', [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }], { ports })]);
  const after = snapshotOf([svc], [slice('dns', [{ ip: '10.244.1.3' }], { ports })]);
  const keys = [...after.servicePorts.keys()];
  t.same(keys, [KEY]);
  t.same(show(planConntrackCleanup(before.servicePorts, after.servicePorts, keys)), [
    'endpoint-gone udp *:30053 -> 10.244.1.2:5353',
    'endpoint-gone udp 10.96.0.53:53 -> 10.244.1.2:5353',
  ]);
});

// ---------------------------------------------------------------------------
// executor

const D = (n: number): ConntrackDeletion => ({ family: 'IPv4', protocol: 'udp', origDst: `10.96.0.${n}`, origPortDst: 53, reason: 'newly-active', service: `ns/s${n}:dns` });

t.test('executor: exit statuses, counts, command prefix', async (t) => {
  const calls: string[][] = [];
  const exec: ConntrackExec = async (argv) => {
    calls.push([...argv]);
    const ip = argv[argv.indexOf('--orig-dst') + 1];
    if (ip === '10.96.0.1') return { exitCode: 0, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n' };
    if (ip === '10.96.0.2') return { exitCode: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' };
    if (ip === '10.96.0.3') return { exitCode: 1, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): Operation not permitted\n' };
    throw new Error('boom');
  };
  const log = memoryLogger();
  const r = await runConntrackCleanup([D(1), D(2), D(3), D(4)], { log, exec, command: ['ip', 'netns', 'exec', 'x', 'conntrack'], family: 'IPv4' });
  t.same(r, { ok: 2, failed: 2, deleted: 3 });
  t.same(calls[0], ['ip', 'netns', 'exec', 'x', 'conntrack', '-D', '-p', 'udp', '--orig-dst', '10.96.0.1', '--orig-port-dst', '53']);
  const errors = log.lines.filter((l) => l.includes(' E '));
  t.equal(errors.length, 2, 'one error line per failure');
  t.ok(errors.some((l) => l.includes('Operation not permitted') && l.includes('service=ns/s3:dns')), 'names the service and the tool error');
  t.ok(errors.some((l) => l.includes('boom')));
  t.ok(log.lines.some((l) => l.includes('Cleared stale conntrack entries') && l.includes('entries=3') && l.includes('failed=2')), 'summary line');
});

t.test('executor: a missing conntrack is reported once', async (t) => {
  const exec: ConntrackExec = async () => ({ stdout: '', stderr: '', errorCode: 'ENOENT', message: 'spawn conntrack ENOENT' });
  const log = memoryLogger();
  const r = await runConntrackCleanup([D(1), D(2), D(3)], { log, exec });
  t.same(r, { ok: 0, failed: 3, deleted: 0 });
  t.equal(log.lines.filter((l) => l.includes('command not found')).length, 1);
});

t.test('executor: bounded concurrency, nothing to do is free', async (t) => {
  let inFlight = 0;
  let max = 0;
  const exec: ConntrackExec = async () => {
    inFlight++;
    max = Math.max(max, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    return { exitCode: 0, stdout: '', stderr: '1 flow entries have been deleted.' };
  };
  const r = await runConntrackCleanup(Array.from({ length: 10 }, (_, i) => D(i)), { log: memoryLogger(), exec, concurrency: 3 });
  t.same(r, { ok: 10, failed: 0, deleted: 10 });
  t.equal(max, 3);
  const log = memoryLogger();
  t.same(await runConntrackCleanup([], { log, exec }), { ok: 0, failed: 0, deleted: 0 });
  t.same(log.lines, []);
});

t.test('executor: the real execa path (a command that does not exist, a stand-in tool)', async (t) => {
  const log = memoryLogger();
  const r = await runConntrackCleanup([D(1)], { log, command: ['kube-proxy-ts-no-such-conntrack'] });
  t.same(r, { ok: 0, failed: 1, deleted: 0 });
  t.ok(log.lines.some((l) => l.includes('command not found')));
  // `sh -c '…' conntrack <args>` stands in for conntrack: exit 1 with "0 flow entries" is success
  const zero = await runConntrackCleanup([D(1)], { log: memoryLogger(), command: ['sh', '-c', 'echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2; exit 1', 'conntrack'] });
  t.same(zero, { ok: 1, failed: 0, deleted: 0 });
  const bad = await runConntrackCleanup([D(1)], { log: memoryLogger(), command: ['sh', '-c', 'echo "invalid parameter" >&2; exit 2', 'conntrack'] });
  t.same(bad, { ok: 0, failed: 1, deleted: 0 });
});
