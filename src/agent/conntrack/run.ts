/**
 * Runs planned conntrack deletions with the `conntrack` CLI (conntrack-tools),
 * one process per deletion through execa, a few at a time. Best effort, as
 * upstream: a failure is logged and counted, never thrown (a stale UDP entry
 * only lives until its timeout). `conntrack -D` exits 1 with "0 flow entries
 * have been deleted" when nothing matched: that is success.
 */
import { execa } from 'execa';
import type { Fields, Logger } from '../log.js';
import type { IPFamily } from '../model/types.js';
import { conntrackArgs } from './plan.js';
import type { ConntrackDeletion } from './plan.js';

/** What one run of the tool returned. */
export interface ConntrackExecResult {
  /** Undefined when the process could not be started or was killed. */
  exitCode?: number;
  stdout: string;
  stderr: string;
  /** e.g. 'ENOENT' when the command does not exist. */
  errorCode?: string;
  timedOut?: boolean;
  /** A one-line description of a failure to start / timeout. */
  message?: string;
}

/** Runs `argv[0]` with `argv.slice(1)`; never rejects. */
export type ConntrackExec = (argv: readonly string[], timeoutMs: number) => Promise<ConntrackExecResult>;

export interface ConntrackRunOptions {
  log: Logger;
  /** The family being synced, only to label log lines (each deletion carries its own family). */
  family?: IPFamily;
  /** Deletions running at once (default 4). */
  concurrency?: number;
  /**
   * The command, as argv prefix (default `['conntrack']`); e.g.
   * `['ip', 'netns', 'exec', NS, 'conntrack']` to clean another namespace.
   */
  command?: readonly string[];
  /** Per deletion (default 10 s). */
  timeoutMs?: number;
  /** Injectable for tests; default execa. */
  exec?: ConntrackExec;
}

export interface ConntrackRunResult {
  /** Deletions that ran fine (including those that matched nothing). */
  ok: number;
  failed: number;
  /** Entries deleted, as the tool reported them. */
  deleted: number;
}

/** conntrack's message when the filter matched nothing (exit status 1). */
export const NO_CONNECTION_TO_DELETE = '0 flow entries have been deleted';

const DELETED_RE = /(\d+) flow entries have been deleted/;

export const execaConntrack: ConntrackExec = async (argv, timeoutMs) => {
  const [file, ...args] = argv;
  if (file === undefined) return { stdout: '', stderr: '', message: 'empty command' };
  const r = await execa(file, args, { reject: false, timeout: timeoutMs, stdin: 'ignore' });
  const out: ConntrackExecResult = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  if (r.exitCode !== undefined) out.exitCode = r.exitCode;
  if (r.timedOut) out.timedOut = true;
  if (r.failed && r.exitCode === undefined) {
    const code = (r as { code?: unknown }).code;
    if (typeof code === 'string') out.errorCode = code;
    out.message = r.shortMessage;
  }
  return out;
};

function fieldsOf(d: ConntrackDeletion): Fields {
  return {
    service: d.service,
    reason: d.reason,
    protocol: d.protocol,
    origDst: d.origDst,
    port: d.origPortDst,
    endpoint: d.replySrc === undefined ? undefined : d.replyPortSrc === undefined ? d.replySrc : `${d.replySrc.includes(':') ? `[${d.replySrc}]` : d.replySrc}:${d.replyPortSrc}`,
  };
}

/** Runs `deletions`; resolves when all are done. Never rejects. */
export async function runConntrackCleanup(deletions: readonly ConntrackDeletion[], opts: ConntrackRunOptions): Promise<ConntrackRunResult> {
  const result: ConntrackRunResult = { ok: 0, failed: 0, deleted: 0 };
  if (deletions.length === 0) return result;
  const { log } = opts;
  const command = opts.command ?? ['conntrack'];
  const exec = opts.exec ?? execaConntrack;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const started = Date.now();
  let missingReported = false;

  const runOne = async (d: ConntrackDeletion): Promise<void> => {
    const args = conntrackArgs(d);
    let r: ConntrackExecResult;
    try {
      r = await exec([...command, ...args], timeoutMs);
    } catch (err) {
      r = { stdout: '', stderr: '', message: err instanceof Error ? err.message : String(err) };
    }
    const text = `${r.stderr}\n${r.stdout}`;
    const m = DELETED_RE.exec(text);
    const n = m ? Number(m[1]) : 0;
    if (r.exitCode === 0 || (r.exitCode === 1 && text.includes(NO_CONNECTION_TO_DELETE))) {
      result.ok++;
      result.deleted += n;
      log.info(4, 'Deleted conntrack entries', { ...fieldsOf(d), entries: n });
      return;
    }
    result.failed++;
    if (r.errorCode === 'ENOENT') {
      if (!missingReported) {
        missingReported = true;
        log.error('Cannot clear stale UDP conntrack entries: command not found (install conntrack-tools)', { command: command.join(' ') });
      }
      return;
    }
    const why = r.timedOut ? `timed out after ${timeoutMs} ms` : r.stderr.trim().split('\n').slice(0, 3).join(' | ') || r.message || `exit status ${r.exitCode}`;
    log.error('Failed to delete stale conntrack entries', { ...fieldsOf(d), command: [...command, ...args].join(' '), err: why });
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < deletions.length) {
      const d = deletions[next++]!;
      await runOne(d);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, deletions.length) }, worker));

  log.info(2, 'Cleared stale conntrack entries', {
    family: opts.family,
    deletions: deletions.length,
    ok: result.ok,
    failed: result.failed,
    entries: result.deleted,
    ms: Date.now() - started,
  });
  return result;
}
