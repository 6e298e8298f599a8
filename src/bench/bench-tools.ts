/**
 * The kernel tools the bench drives, each metering the time spent in it:
 * - iptables mode, an IptablesTool: `namespaceTool`, the real
 *   iptables-legacy or iptables-nft tools run inside a throwaway network
 *   namespace (`ip netns exec NS …`: ip enters the namespace and execs the
 *   tool, one process per call), with a deadline so a call can never hang
 *   the bench; `recordingTool` (--no-apply) applies nothing and records
 *   input sizes;
 * - nftables mode, an NftRunner (what the nftables backend's applier runs):
 *   `namespaceNft`, the real `nft` in the namespace, with the same deadline;
 *   `recordingNft` (--no-apply).
 *
 * A lazily rendered input (the iptables backend's full sync) is rendered
 * while the tool reads it: the time spent producing its pieces is the
 * agent's, and is not counted as the tool's.
 *
 * Namespaces are created and deleted here; every namespace still alive is
 * known, so a signal or an exit can delete it (deleteLiveNamespacesSync).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, ExecaError } from 'execa';
import { runWithChunks } from '../backends/run-chunks.js';
import type { IptablesTool } from '../backends/iptables/tool.js';
import { NftError, nftApplyError } from '../backends/nftables/nft/run.js';
import type { NftJSON, NftRunner } from '../backends/nftables/nft/run.js';
import type { IptablesVariant } from './kernel-floor.js';

export interface MeteredTool extends IptablesTool {
  /** Milliseconds spent in the tool since the last call to takeMs. */
  takeMs(): number;
  /** Calls made so far (save, restore, chainExists). */
  readonly calls: number;
}

/** nftables mode: `nft` (what the backend's applier runs), metered. */
export interface MeteredNft extends NftRunner {
  /** Milliseconds spent in nft since the last call to takeMs. */
  takeMs(): number;
  /** Calls made so far (`nft -f`, `nft -j`). */
  readonly calls: number;
}

/** A kernel tool call ran past the bench's deadline and was killed. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

/** --no-apply: nothing reaches the kernel; the inputs' sizes are recorded. */
export function recordingTool(): MeteredTool & { inputBytes: number[]; restoreChunks(chunks: Iterable<string>): Promise<void> } {
  const tool = {
    inputBytes: [] as number[],
    calls: 0,
    takeMs: () => 0,
    async save() {
      tool.calls++;
      return '';
    },
    async restore(input: string) {
      tool.calls++;
      tool.inputBytes.push(Buffer.byteLength(input));
    },
    async restoreChunks(chunks: Iterable<string>) {
      tool.calls++;
      let bytes = 0;
      for (const c of chunks) bytes += Buffer.byteLength(c);
      tool.inputBytes.push(bytes);
    },
    async chainExists() {
      tool.calls++;
      return true;
    },
  };
  return tool;
}

/** --no-apply in nftables mode: nothing reaches nft (every listing is empty); the inputs' sizes are recorded. */
export function recordingNft(): MeteredNft & { inputBytes: number[] } {
  const nft = {
    inputBytes: [] as number[],
    calls: 0,
    takeMs: () => 0,
    async run(input: string | Iterable<string>) {
      nft.calls++;
      let bytes = 0;
      for (const piece of typeof input === 'string' ? [input] : input) bytes += Buffer.byteLength(piece);
      nft.inputBytes.push(bytes);
    },
    async json(): Promise<NftJSON> {
      nft.calls++;
      return { nftables: [] };
    },
  };
  return nft;
}

const liveNamespaces = new Set<string>();

/** Deletes every namespace this process created and has not deleted yet (for exit and signal handlers). */
export function deleteLiveNamespacesSync(): void {
  for (const ns of liveNamespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    liveNamespaces.delete(ns);
  }
}

export function liveNamespaceNames(): string[] {
  return [...liveNamespaces];
}

export async function createNamespace(name: string): Promise<void> {
  const r = await execa('ip', ['netns', 'add', name], { reject: false });
  if (r.exitCode !== 0) {
    const why = String(r.stderr ?? '').trim() || r.shortMessage;
    throw new Error(`cannot create network namespace ${name}: ${why}${process.getuid?.() !== 0 ? ' (the bench needs root; use --no-apply to bench the pipeline alone)' : ''}`);
  }
  liveNamespaces.add(name);
}

export async function deleteNamespace(name: string): Promise<void> {
  const r = await execa('ip', ['netns', 'del', name], { reject: false });
  if (r.exitCode !== 0 && !/No such file/i.test(String(r.stderr))) throw new Error(`cannot delete network namespace ${name}: ${String(r.stderr).trim()}`);
  liveNamespaces.delete(name);
}

export async function namespaceExists(name: string): Promise<boolean> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return String(r.stdout).split('\n').some((l) => l.split(' ')[0] === name);
}

/** The variant the host's own `iptables-restore` is. */
export async function hostVariant(): Promise<IptablesVariant> {
  const r = await execa('iptables-restore', ['--version'], { reject: false });
  return /nf_tables/.test(`${String(r.stdout)}${String(r.stderr)}`) ? 'nft' : 'legacy';
}

export interface NamespaceToolOptions {
  variant: IptablesVariant;
  /** Absolute time (performance.now()) after which calls are refused or killed. */
  deadline: number;
  /** Why the deadline exists, for the error message. */
  deadlineReason: string;
}

/**
 * The real tools inside a namespace. iptables-legacy serialises on the
 * xtables lock file, which is shared by every namespace: the bench uses a
 * private lock file (XTABLES_LOCKFILE) so a ten-second restore here never
 * blocks anyone else's iptables, and theirs never skew the timings.
 */
export function namespaceTool(ns: string, opts: NamespaceToolOptions): MeteredTool & { dispose(): void } {
  const cmds = { iptables: `iptables-${opts.variant}`, save: `iptables-${opts.variant}-save`, restore: `iptables-${opts.variant}-restore` };
  const lockDir = mkdtempSync(join(tmpdir(), 'kpt-bench-lock-'));
  const env = { XTABLES_LOCKFILE: join(lockDir, 'xtables.lock') };
  const meter = new ToolMeter(opts);

  async function run(file: string, args: string[], input?: string | Iterable<string>): Promise<{ stdout: string; exitCode: number; stderr: string }> {
    const r = await meter.time(file, file, async (timeout, producing) => {
      const options = { env, timeout, forceKillAfterDelay: 2000, maxBuffer: 1024 * 1024 * 1024, stripFinalNewline: false } as const;
      const argv = ['netns', 'exec', ns, file, ...args];
      // The time spent producing the pieces of a lazily rendered input is the agent's, not the tool's.
      return input !== undefined && typeof input !== 'string'
        ? (await runWithChunks('ip', argv, timedPieces(input, producing), options)).result
        : await execa('ip', argv, { ...options, reject: false, ...(input !== undefined ? { input } : { stdin: 'ignore' as const }) });
    });
    return { stdout: String(r.stdout), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
  }

  function failure(file: string, r: { stderr: string; exitCode: number }): Error {
    return new Error(`${file} in namespace ${ns} failed (exit status ${r.exitCode}): ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
  }

  return {
    get calls() {
      return meter.calls;
    },
    takeMs: () => meter.takeMs(),
    async save() {
      const r = await run(cmds.save, []);
      if (r.exitCode !== 0) throw failure(cmds.save, r);
      return r.stdout;
    },
    async restore(input) {
      const r = await run(cmds.restore, ['--noflush', '-w', '30'], input);
      if (r.exitCode !== 0) throw failure(cmds.restore, r);
    },
    async restoreChunks(chunks) {
      const r = await run(cmds.restore, ['--noflush', '-w', '30'], chunks);
      if (r.exitCode !== 0) throw failure(cmds.restore, r);
    },
    async chainExists(table, chain) {
      const r = await run(cmds.iptables, ['-w', '30', '-t', table, '-S', chain]);
      if (r.exitCode === 0) return true;
      if (r.exitCode === 1) return false;
      throw failure(cmds.iptables, r);
    },
    dispose() {
      rmSync(lockDir, { recursive: true, force: true });
    },
  };
}

/**
 * The time spent in a kernel tool's calls and how many there were, each
 * call under the bench's deadline: refused past it, killed at it.
 */
class ToolMeter {
  calls = 0;
  private spent = 0;

  constructor(private readonly opts: { deadline: number; deadlineReason: string }) {}

  /** Milliseconds spent in the tool since the last call. */
  takeMs(): number {
    const ms = this.spent;
    this.spent = 0;
    return ms;
  }

  /**
   * Runs one call of `file` (`what`: the call, for the message): `f` gets
   * the milliseconds left and a way to report time inside the call that was
   * not the tool's; a call that timed out is a DeadlineError.
   */
  async time<T extends { timedOut: boolean }>(file: string, what: string, f: (timeoutMs: number, notTool: (ms: number) => void) => Promise<T>): Promise<T> {
    const remaining = this.opts.deadline - performance.now();
    if (remaining <= 0) throw new DeadlineError(`${this.opts.deadlineReason}: not running ${file}`);
    this.calls++;
    const start = performance.now();
    let notTool = 0;
    try {
      const r = await f(Math.ceil(remaining), (ms) => (notTool += ms));
      if (r.timedOut) throw new DeadlineError(`${this.opts.deadlineReason}: ${what} killed after ${((performance.now() - start) / 1000).toFixed(1)} s`);
      return r;
    } finally {
      this.spent += Math.max(0, performance.now() - start - notTool);
    }
  }
}

/** The pieces, with the time spent producing each one (taking it from the iterable) reported. */
export function* timedPieces(pieces: Iterable<string>, spent: (ms: number) => void): Generator<string, void, undefined> {
  const it = pieces[Symbol.iterator]();
  try {
    for (;;) {
      const t = performance.now();
      const r = it.next();
      spent(performance.now() - t);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    it.return?.();
  }
}

/** The real `nft` inside a namespace, as the backend's own runner (execNft) behaves, with a deadline. */
export function namespaceNft(ns: string, opts: { deadline: number; deadlineReason: string }): MeteredNft {
  const meter = new ToolMeter(opts);
  const timed = <T extends { timedOut: boolean }>(what: string, f: (o: { timeout: number; forceKillAfterDelay: number; maxBuffer: number }) => Promise<T>): Promise<T> =>
    meter.time('nft', what, (timeout) => f({ timeout, forceKillAfterDelay: 2000, maxBuffer: 1024 * 1024 * 1024 }));
  return {
    get calls() {
      return meter.calls;
    },
    takeMs: () => meter.takeMs(),
    async run(input) {
      // Written in pieces as nft reads them, not execa's `input` (a copy: 0.4 s at 40 MB); producing them is the agent's time.
      let lineAt: (n: number) => string | undefined = () => undefined;
      const r = await meter.time('nft', 'nft -f', async (timeout, producing) => {
        const pieces = typeof input === 'string' ? [input] : timedPieces(input, producing);
        const run = await runWithChunks('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], pieces, { timeout, forceKillAfterDelay: 2000, maxBuffer: 1024 * 1024 * 1024 });
        lineAt = run.lineAt;
        return run.result;
      });
      if (r.failed) throw nftApplyError(`nft -f in namespace ${ns} failed`, String(r.stderr ?? ''), r.shortMessage ?? 'failed', typeof input === 'string' ? input : lineAt);
    },
    async json(args) {
      const r = await timed(`nft -j ${args.join(' ')}`, (o) => execa('ip', ['netns', 'exec', ns, 'nft', '-j', ...args], { ...o, reject: false, stdin: 'ignore' }));
      if (r.failed) {
        const stderr = String(r.stderr ?? '');
        throw new NftError(`nft -j ${args.join(' ')} in namespace ${ns} failed: ${stderr.trim().split('\n')[0] || r.shortMessage}`, stderr, undefined, undefined, /No such file or directory/.test(stderr));
      }
      const text = String(r.stdout).trim();
      return text === '' ? { nftables: [] } : (JSON.parse(text) as NftJSON);
    },
  };
}

export function isDeadline(err: unknown): err is DeadlineError {
  return err instanceof DeadlineError || (err instanceof ExecaError && err.timedOut === true);
}
