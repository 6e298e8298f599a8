/**
 * `npm run demo` (as root): a throwaway world of network namespaces (a node,
 * two pods answering with their names, an outside client), the agent running
 * in the node against examples/, real requests to every kind of service
 * address, the rules it wrote, and a clean teardown.
 *
 *   sudo npm run demo [-- --proxy-mode=nftables]
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTopology, NODE_IP } from './netns/topology.js';
import type { ProbeOptions, Topology } from './netns/topology.js';
import { repoRoot, startAgentInNode } from './netns/agent.js';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function modeFromArgs(argv: readonly string[]): 'iptables' | 'nftables' {
  const arg = argv.find((a) => a.startsWith('--proxy-mode='));
  const mode = arg?.slice('--proxy-mode='.length) ?? 'iptables';
  if (mode !== 'iptables' && mode !== 'nftables') throw new Error(`--proxy-mode: must be iptables or nftables, got ${JSON.stringify(mode)}`);
  return mode;
}

async function main(): Promise<number> {
  const mode = modeFromArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stderr.write('The demo creates network namespaces and iptables rules inside them: run it as root (sudo npm run demo).\n');
    return 1;
  }
  const manifests = await mkdtemp(join(tmpdir(), 'kube-proxy-ts-demo-'));
  await cp(join(repoRoot(), 'examples'), manifests, { recursive: true });
  let topo: Topology | undefined;
  const cleanup = async (): Promise<void> => {
    await topo?.destroy();
    await rm(manifests, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    console.log(bold('1. Building the network: a node, two pods, an outside client (network namespaces)'));
    topo = await createTopology({
      prefix: `kpt-demo-${process.pid}`,
      pods: [
        { name: 'pod-a', ip: '10.244.1.2' },
        { name: 'pod-b', ip: '10.244.1.3' },
      ],
    });
    console.log(topo.describe());

    console.log(bold(`\n2. Starting kube-proxy-ts in ${topo.nodeNs} with the manifests in examples/`));
    const args = [`--proxy-mode=${mode}`, `--manifests=${manifests}`, '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16'];
    console.log(`   kube-proxy-ts ${args.join(' ')}`);
    const agent = startAgentInNode(topo, args);
    await agent.waitForSyncs(1);
    const synced = agent.lines.find((l) => l.includes('"synced rules"'));
    console.log(`   ${synced ?? ''}`);

    console.log(bold('\n3. Sending real requests'));
    const t = topo;
    const ask = async (label: string, ns: string, opts: ProbeOptions, n: number): Promise<void> => {
      const answers: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await t.probe(ns, { timeoutMs: 1500, ...opts });
        answers.push(r.ok ? `${r.pod}${r.from !== '' ? ` (saw ${r.from})` : ''}` : `${r.error} after ${r.ms} ms`);
      }
      const counts = new Map<string, number>();
      for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
      const summary = [...counts].map(([a, c]) => `${c}× ${a}`).join(', ');
      console.log(`   ${label.padEnd(58)} → ${summary}`);
    };
    await ask('node   → ClusterIP 10.96.0.10:80 (tcp)', topo.nodeNs, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 6);
    await ask('pod-a  → ClusterIP 10.96.0.10:80 (tcp)', topo.pod('pod-a').ns, { proto: 'tcp', host: '10.96.0.10', port: 80 }, 6);
    await ask(`client → NodePort ${NODE_IP}:30080 (tcp)`, topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30080 }, 6);
    await ask('client → LoadBalancer IP 198.51.100.10:80 (tcp)', topo.clientNs, { proto: 'tcp', host: '198.51.100.10', port: 80 }, 6);
    await ask('pod-b  → ClusterIP 10.96.0.53:53 (udp)', topo.pod('pod-b').ns, { proto: 'udp', host: '10.96.0.53', port: 53 }, 6);
    await ask('client → demo/empty NodePort 30020 (no endpoints)', topo.clientNs, { proto: 'tcp', host: NODE_IP, port: 30020 }, 1);
    console.log('   (a pod that reaches itself is seen from 10.244.255.1: hairpin masquerade; outside clients are masqueraded too)');

    if (mode === 'nftables') {
      console.log(bold(`\n4. The rules it wrote (nft list table ip kube-proxy in ${topo.nodeNs})`));
      const listed = (await topo.exec(topo.nodeNs, ['nft', 'list', 'table', 'ip', 'kube-proxy'], { check: true })).stdout;
      for (const line of listed.split('\n')) if (line.trim() !== '') console.log(`   ${line}`);
    } else {
      console.log(bold(`\n4. The rules it wrote (iptables-save in ${topo.nodeNs}, our chains only)`));
      const saved = (await topo.exec(topo.nodeNs, ['iptables-save'], { check: true })).stdout;
      for (const line of saved.split('\n')) {
        if (line.startsWith('*') || /KUBE-/.test(line)) console.log(`   ${line}`);
      }
    }

    console.log(bold('\n5. Stopping the agent (SIGTERM) and tearing everything down'));
    const code = await agent.stop('SIGTERM');
    console.log(`   agent exited with ${code}`);
    return 0;
  } finally {
    await cleanup();
    console.log('   done: every namespace created by the demo is gone');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
