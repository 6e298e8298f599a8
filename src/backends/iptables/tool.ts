/**
 * The thin edge to the kernel: iptables-save to read, iptables-restore to
 * write, each one process through execa. One restore call is one atomic
 * transaction: when it fails the kernel keeps the previous rules.
 */
import { execa, ExecaError } from 'execa';

export interface IptablesTool {
  /** The whole current ruleset (all tables), as iptables-save prints it. */
  save(): Promise<string>;
  /** Applies an iptables-restore input with --noflush, waiting for the xtables lock. */
  restore(input: string): Promise<void>;
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
        const stderr = err instanceof ExecaError ? String(err.stderr ?? '') : '';
        const m = /line:?\s*(\d+)/i.exec(stderr);
        const line = m ? Number(m[1]) : undefined;
        const lineText = line !== undefined ? input.split('\n')[line - 1] : undefined;
        const where = line !== undefined ? ` at input line ${line}: ${lineText ?? '?'}` : '';
        throw new RestoreError(`${cmds.restore} failed: ${toolMessage(err)}${where}`, stderr, line, lineText);
      }
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

function toolMessage(err: unknown): string {
  if (err instanceof ExecaError) {
    const stderr = String(err.stderr ?? '').trim();
    if (err.code === 'ENOENT') return 'command not found (install iptables)';
    return stderr !== '' ? stderr.split('\n').slice(0, 3).join(' | ') : err.shortMessage;
  }
  return err instanceof Error ? err.message : String(err);
}
