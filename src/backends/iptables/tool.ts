/**
 * The thin edge to the kernel: iptables-save to read, iptables-restore to
 * write, each one process through execa. One restore call is one atomic
 * transaction: when it fails the kernel keeps the previous rules.
 */
import { execa, ExecaError } from 'execa';
import type { Options, Result } from 'execa';

export interface IptablesTool {
  /** The whole current ruleset (all tables), as iptables-save prints it. */
  save(): Promise<string>;
  /** Applies an iptables-restore input with --noflush, waiting for the xtables lock. */
  restore(input: string): Promise<void>;
  /**
   * Optional: restore(), the input given in pieces (their concatenation),
   * each taken from the iterable when the tool can read more (so a lazily
   * rendered input is rendered while the tool reads it, and never held
   * whole). Iterates it once, to its end unless the tool fails. Without it,
   * restoreChunks joins the pieces and calls restore.
   */
  restoreChunks?(chunks: Iterable<string>): Promise<void>;
  /** Whether a chain exists in a table (cheap: reads one chain, not the ruleset). */
  chainExists(table: string, chain: string): Promise<boolean>;
}

export class RestoreError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    readonly line?: number,
    readonly lineText?: string,
  ) {
    super(message);
    this.name = 'RestoreError';
  }
}

export interface IptablesCommands {
  iptables: string;
  save: string;
  restore: string;
}

/** Applies an input given in pieces, through the tool's restoreChunks when it has one. */
export async function restoreChunks(tool: IptablesTool, chunks: Iterable<string>): Promise<void> {
  if (tool.restoreChunks) return tool.restoreChunks(chunks);
  return tool.restore([...chunks].join(''));
}

/** Line `n` (1-based) of the concatenation of the pieces, or undefined. */
export function lineOfChunks(chunks: readonly string[], n: number): string | undefined {
  if (!(n >= 1)) return undefined;
  let line = 1;
  let carry = '';
  for (const c of chunks) {
    let from = 0;
    while (line < n) {
      const nl = c.indexOf('\n', from);
      if (nl < 0) break;
      line++;
      from = nl + 1;
      carry = '';
    }
    if (line < n) continue;
    const end = c.indexOf('\n', from);
    if (end >= 0) return carry + c.slice(from, end);
    carry += c.slice(from);
  }
  return carry !== '' ? carry : undefined;
}

/** How many of the last pieces written runWithChunks keeps, to quote a failing line. */
const KEPT_PIECES = 4;

export interface ChunkedRun {
  /** execa's result, or its error (returned, not thrown). */
  result: Result;
  /** Line n (1-based) of the input, when it is in one of the last pieces written. */
  lineAt(n: number): string | undefined;
}

/**
 * Runs a command with the pieces written to its standard input one after
 * the other, taking the next piece only when the pipe has room (no copy of
 * the whole input; a lazily rendered input is rendered as the tool reads
 * it). A failure is returned, not thrown (as with reject: false), and a
 * tool that stops reading (it failed, or was killed at a timeout) ends the
 * writing. When taking a piece throws, the tool is killed before it has
 * read the rest (iptables-restore applies a table at its COMMIT line) and
 * the error is thrown.
 */
export async function runWithChunks(file: string, args: readonly string[], chunks: Iterable<string>, opts: Omit<Options, 'input' | 'stdin' | 'reject'> = {}): Promise<ChunkedRun> {
  const sub = execa(file, args, { ...opts, stdin: 'pipe', reject: false });
  const stdin = sub.stdin;
  let exited = false;
  const exit = sub.then(
    () => void (exited = true),
    () => void (exited = true),
  );
  const writable = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        stdin.off('drain', done);
        stdin.off('close', done);
        stdin.off('error', done);
        resolve();
      };
      stdin.on('drain', done);
      stdin.on('close', done);
      stdin.on('error', done);
    });
  const open = (): boolean => !exited && !stdin.destroyed && stdin.writable;
  /** The last pieces written, with the number of their first line. */
  const kept: { first: number; text: string }[] = [];
  let line = 1;
  try {
    if (open()) {
      for (const c of chunks) {
        kept.push({ first: line, text: c });
        if (kept.length > KEPT_PIECES) kept.shift();
        for (let i = c.indexOf('\n'); i >= 0; i = c.indexOf('\n', i + 1)) line++;
        if (!stdin.write(c)) await Promise.race([writable(), exit]);
        if (!open()) break;
      }
    }
  } catch (err) {
    // Producing the input failed: the tool must not apply a part of it.
    sub.kill('SIGKILL');
    await exit;
    throw err;
  }
  if (!stdin.destroyed) stdin.end();
  const result = (await sub) as Result;
  const lineAt = (n: number): string | undefined => {
    // The last piece kept that starts at or before line n (the line may go on into the next ones).
    for (let i = kept.length - 1; i >= 0; i--) {
      if (kept[i]!.first <= n) return lineOfChunks(kept.slice(i).map((k) => k.text), n - kept[i]!.first + 1);
    }
    return undefined;
  };
  return { result, lineAt };
}

export const DEFAULT_COMMANDS: IptablesCommands = { iptables: 'iptables', save: 'iptables-save', restore: 'iptables-restore' };
export const IPV6_COMMANDS: IptablesCommands = { iptables: 'ip6tables', save: 'ip6tables-save', restore: 'ip6tables-restore' };

/** Seconds to wait for the xtables lock, as upstream's --wait. */
const LOCK_WAIT_SECONDS = '5';

export function execIptables(cmds: IptablesCommands = DEFAULT_COMMANDS): IptablesTool {
  return {
    async save() {
      try {
        const r = await execa(cmds.save, [], { stripFinalNewline: false, maxBuffer: 1024 * 1024 * 1024 });
        return r.stdout;
      } catch (err) {
        throw new Error(`${cmds.save} failed: ${toolMessage(err)}`);
      }
    },
    async restore(input) {
      try {
        await execa(cmds.restore, ['--noflush', '-w', LOCK_WAIT_SECONDS], { input, maxBuffer: 64 * 1024 * 1024 });
      } catch (err) {
        throw restoreError(cmds.restore, err, (n) => input.split('\n')[n - 1]);
      }
    },
    async restoreChunks(chunks) {
      const { result: r, lineAt } = await runWithChunks(cmds.restore, ['--noflush', '-w', LOCK_WAIT_SECONDS], chunks, { maxBuffer: 64 * 1024 * 1024 });
      if (r.failed) throw restoreError(cmds.restore, r, lineAt);
    },
    async chainExists(table, chain) {
      const r = await execa(cmds.iptables, ['-w', LOCK_WAIT_SECONDS, '-t', table, '-S', chain], { reject: false });
      if (r.exitCode === 0) return true;
      // Exit 1: the chain is missing (iptables-legacy says "No chain/target/match by that name",
      // iptables-nft says the chain "is incompatible, use 'nft' tool"). Anything else is an error.
      if (r.exitCode === 1) return false;
      throw new Error(`${cmds.iptables} -t ${table} -S ${chain} failed: ${String(r.stderr).trim() || r.shortMessage}`);
    },
  };
}

/** The RestoreError of a failed iptables-restore (`err`: what execa threw or returned), quoting the input line it names. */
function restoreError(command: string, err: unknown, lineAt: (n: number) => string | undefined): RestoreError {
  const stderr = err instanceof ExecaError ? String(err.stderr ?? '') : '';
  const m = /line:?\s*(\d+)/i.exec(stderr);
  const line = m ? Number(m[1]) : undefined;
  const lineText = line !== undefined ? lineAt(line) : undefined;
  const where = line !== undefined ? ` at input line ${line}: ${lineText ?? '?'}` : '';
  return new RestoreError(`${command} failed: ${toolMessage(err)}${where}`, stderr, line, lineText);
}

function toolMessage(err: unknown): string {
  if (err instanceof ExecaError) {
    const stderr = String(err.stderr ?? '').trim();
    if (err.code === 'ENOENT') return 'command not found (install iptables)';
    return stderr !== '' ? stderr.split('\n').slice(0, 3).join(' | ') : err.shortMessage;
  }
  return err instanceof Error ? err.message : String(err);
}
