/**
 * Runs a kernel tool with its input written in pieces, as it reads them
 * (iptables-restore, nft -f): no copy of the whole input, and a lazily
 * rendered input is rendered while the tool reads it.
 */
import { execa } from 'execa';
import type { Options, Result } from 'execa';

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
