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
  /** Resolves with the first log line matching `re` (one already logged counts). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
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
  /** Waits (on new log lines, or 100 ms) until done() holds; fails after timeoutMs or when the agent exits. */
  const waitUntil = async (done: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms; log:\n${lines.join('\n')}`);
      if (proc.exitCode !== null && proc.exitCode !== undefined) throw new Error(`agent exited with ${proc.exitCode}; log:\n${lines.join('\n')}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  return {
    lines,
    syncs,
    async waitForSyncs(count, timeoutMs = 10_000) {
      await waitUntil(() => syncs() >= count, timeoutMs, `agent did not sync ${count} times`);
    },
    async waitForLine(re, timeoutMs = 10_000) {
      await waitUntil(() => lines.some((l) => re.test(l)), timeoutMs, `agent did not log ${String(re)}`);
      return lines.find((l) => re.test(l))!;
    },
    async stop(signal = 'SIGTERM') {
      proc.kill(signal);
      return exited;
    },
    exited,
  };
}
