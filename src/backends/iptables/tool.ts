/**
 * The thin edge to the kernel: iptables-save to read, iptables-restore to
 * write, each one process through execa. One restore call is one atomic
 * transaction: when it fails the kernel keeps the previous rules.
 */
import { execa, ExecaError } from 'execa';
import { runWithChunks } from '../run-chunks.js';

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
export { lineOfChunks, runWithChunks } from '../run-chunks.js';
export type { ChunkedRun } from '../run-chunks.js';

export async function restoreChunks(tool: IptablesTool, chunks: Iterable<string>): Promise<void> {
  if (tool.restoreChunks) return tool.restoreChunks(chunks);
  return tool.restore([...chunks].join(''));
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
