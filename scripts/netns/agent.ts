/**
 * Runs the built agent (dist/src/agent/main.js) inside a topology's node
 * namespace and follows its log, so the demo and the e2e tests can wait for
 * a sync and stop it with a signal.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { nodeCmd } from './topology.js';
import type { Topology } from './topology.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root, from scripts/netns (sources) or dist/scripts/netns (built). */
export function repoRoot(): string {
  for (const up of ['../..', '../../..']) {
    const root = path.resolve(here, up);
    if (existsSync(path.join(root, 'package.json'))) return root;
  }
  throw new Error(`cannot find the repository root from ${here}`);
}

export function agentMain(): string {
  const main = path.join(repoRoot(), 'dist/src/agent/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  return main;
}

export interface RunningAgentProcess {
  /** Every log line so far. */
  readonly lines: string[];
  /** Resolves when `count` sync lines ("synced rules") have been logged in total. */
  waitForSyncs(count: number, timeoutMs?: number): Promise<void>;
  /** Number of successful syncs logged so far. */
  syncs(): number;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | undefined>;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | undefined>;
}

export function startAgentInNode(topo: Topology, args: string[]): RunningAgentProcess {
  const proc = topo.spawn(topo.nodeNs, nodeCmd(agentMain(), '--v=2', ...args));
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const exited = proc.then((r) => r.exitCode);
  const syncs = (): number => lines.filter((l) => l.includes('"synced rules"')).length;
  return {
    lines,
    syncs,
    async waitForSyncs(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (syncs() < count) {
        if (Date.now() > deadline) throw new Error(`agent did not sync ${count} times within ${timeoutMs} ms; log:\n${lines.join('\n')}`);
        if (proc.exitCode !== null && proc.exitCode !== undefined) throw new Error(`agent exited with ${proc.exitCode}; log:\n${lines.join('\n')}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    async stop(signal = 'SIGTERM') {
      proc.kill(signal);
      return exited;
    },
    exited,
  };
}
