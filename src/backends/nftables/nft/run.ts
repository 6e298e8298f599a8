/**
 * The thin edge to the kernel: `nft -f -` through execa, in the current
 * network namespace. One call is one atomic transaction; when it fails the
 * kernel keeps what it had, and the error carries nft's message and the
 * failing input line.
 */
import { execa, ExecaError } from 'execa';
import { runWithChunks } from '../../run-chunks.js';
import type { Family } from './objects.js';
import type { Transaction } from './transaction.js';

export class NftError extends Error {
  constructor(
    message: string,
    /** nft's whole stderr. */
    readonly stderr: string,
    /** 1-based line of the input nft complained about, when it said. */
    readonly line?: number,
    readonly lineText?: string,
    /** True for "No such file or directory" (an object that is not there). */
    readonly notFound = false,
  ) {
    super(message);
    this.name = 'NftError';
  }
}

/** What the backend needs from nft. */
export interface NftRunner {
  /** Applies `nft -f -` input (one transaction): a string, or its pieces (written as nft reads them). */
  run(input: string | Iterable<string>): Promise<void>;
  /** `nft -j <args>` (e.g. `list chains ip`), parsed. */
  json(args: readonly string[]): Promise<NftJSON>;
}

/** `nft -j` output: a list of one-key objects (`{ chain: {...} }`, `{ set: {...} }`, ...). */
export interface NftJSON {
  nftables: Record<string, unknown>[];
}

export interface ExecNftOptions {
  /** The nft binary (default `nft`). */
  nft?: string;
  /**
   * A command prefix, e.g. `['ip', 'netns', 'exec', 'ns1']` to run nft in
   * another network namespace (tests). Default: none (this namespace).
   */
  prefix?: readonly string[];
}

const STDIN_ERROR = /^\/dev\/stdin:(\d+):[\d-]+: Error: (.*)$/m;

/** The input nft was given, or a way to find one of its lines (1-based) when it was written in pieces. */
export type NftInput = string | ((line: number) => string | undefined);

/** Parses nft's error output (for `-f -` input): the first error, its line and that line's text. */
export function parseNftError(stderr: string, input: NftInput): { message: string; line?: number; lineText?: string } {
  const m = STDIN_ERROR.exec(stderr);
  if (!m) {
    const first = stderr.split('\n').find((l) => l.startsWith('Error:')) ?? stderr.split('\n')[0] ?? '';
    return { message: first.replace(/^Error:\s*/, '').trim() };
  }
  const line = Number(m[1]);
  const lineText = typeof input === 'string' ? input.split('\n')[line - 1] : input(line);
  return lineText === undefined ? { message: m[2]!.trim(), line } : { message: m[2]!.trim(), line, lineText };
}

function commandFor(opts: ExecNftOptions): { file: string; pre: string[] } {
  const nft = opts.nft ?? 'nft';
  const prefix = opts.prefix ?? [];
  return prefix.length > 0 ? { file: prefix[0]!, pre: [...prefix.slice(1), nft] } : { file: nft, pre: [] };
}

function toolMessage(err: unknown): string {
  if (err instanceof ExecaError) {
    if (err.code === 'ENOENT') return 'command not found (install nftables)';
    const stderr = String(err.stderr ?? '').trim();
    return stderr !== '' ? stderr.split('\n').slice(0, 3).join(' | ') : err.shortMessage;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The NftError of a refused `nft -f` input: nft's first error, with the input line it names. */
export function nftApplyError(what: string, stderr: string, fallback: string, input: NftInput): NftError {
  if (stderr === '') return new NftError(`${what}: ${fallback}`, stderr);
  const p = parseNftError(stderr, input);
  const where = p.line !== undefined ? ` at input line ${p.line}: ${p.lineText ?? '?'}` : '';
  return new NftError(`${what}: ${p.message}${where}`, stderr, p.line, p.lineText, /No such file or directory/.test(p.message));
}

export function execNft(opts: ExecNftOptions = {}): NftRunner {
  const { file, pre } = commandFor(opts);
  return {
    async run(input) {
      // Written in pieces (execa's `input` would copy a string: 0.4 s at 40 MB).
      const { result: r, lineAt } = await runWithChunks(file, [...pre, '-f', '-'], typeof input === 'string' ? [input] : input, { maxBuffer: 64 * 1024 * 1024 });
      if (r.failed) throw nftApplyError('nft -f failed', String(r.stderr ?? ''), toolMessage(r), typeof input === 'string' ? input : lineAt);
    },
    async json(args) {
      try {
        const r = await execa(file, [...pre, '-j', ...args], { maxBuffer: 1024 * 1024 * 1024 });
        const text = r.stdout.trim();
        return text === '' ? { nftables: [] } : (JSON.parse(text) as NftJSON);
      } catch (err) {
        const stderr = err instanceof ExecaError ? String(err.stderr ?? '') : '';
        throw new NftError(`nft -j ${args.join(' ')} failed: ${toolMessage(err)}`, stderr, undefined, undefined, /No such file or directory/.test(stderr));
      }
    },
  };
}

/** `runNft(text)`: applies one transaction text in the current network namespace. */
export async function runNft(text: string, opts: ExecNftOptions = {}): Promise<void> {
  await execNft(opts).run(text);
}

/** Applies a Transaction through a runner; an empty one is not sent. */
export async function runTransaction(runner: NftRunner, tx: Transaction): Promise<void> {
  if (tx.isEmpty) return;
  await runner.run(tx.toText());
}

/** The names of the chains, sets and maps of one table, as the kernel has them. */
export interface TableListing {
  /** Whether the table has any chain, set or map. */
  exists: boolean;
  chains: Map<string, { type?: string; hook?: string; prio?: number }>;
  sets: Map<string, { type: string; flags: string[]; timeout?: number }>;
  maps: Map<string, { type: string; flags: string[] }>;
}

function typeText(t: unknown): string {
  if (Array.isArray(t)) return t.map(String).join(' . ');
  return String(t ?? '');
}

/**
 * Lists one table's chains, sets and maps (names and types, never rules or
 * elements): `nft -j list chains|sets|maps FAMILY`, filtered to the table.
 */
export async function listTable(runner: NftRunner, family: Family, tableName: string): Promise<TableListing> {
  // Not `list tables`: nft 1.0.6 loads its whole cache for it (1.5 s at 33,000 chains); these three read names only.
  const out: TableListing = { exists: false, chains: new Map(), sets: new Map(), maps: new Map() };
  for (const what of ['chains', 'sets', 'maps'] as const) {
    const j = await runner.json(['-t', 'list', what, family]);
    for (const o of j.nftables) {
      if (what === 'chains' && o['chain']) {
        const c = o['chain'] as { table: string; name: string; type?: string; hook?: string; prio?: number };
        if (c.table === tableName) out.chains.set(c.name, { ...(c.type ? { type: c.type } : {}), ...(c.hook ? { hook: c.hook } : {}), ...(c.prio !== undefined ? { prio: c.prio } : {}) });
      } else if (what === 'sets' && o['set']) {
        const s = o['set'] as { table: string; name: string; type: unknown; flags?: string[]; timeout?: number };
        if (s.table === tableName) out.sets.set(s.name, { type: typeText(s.type), flags: s.flags ?? [], ...(s.timeout !== undefined ? { timeout: s.timeout } : {}) });
      } else if (what === 'maps' && o['map']) {
        const m = o['map'] as { table: string; name: string; type: unknown; map: unknown; flags?: string[] };
        if (m.table === tableName) out.maps.set(m.name, { type: `${typeText(m.type)} : ${typeText(m.map)}`, flags: m.flags ?? [] });
      }
    }
  }
  out.exists = out.chains.size + out.sets.size + out.maps.size > 0;
  return out;
}

/**
 * The kernel handle of one set (undefined when it or its table is not
 * there): `nft -j -t list set`, which reads that set's definition only, so it
 * costs milliseconds whatever the table's size.
 */
export async function setHandle(runner: NftRunner, family: Family, tableName: string, name: string): Promise<number | undefined> {
  try {
    const j = await runner.json(['-t', 'list', 'set', family, tableName, name]);
    for (const o of j.nftables) {
      const s = o['set'] as { name?: string; handle?: number } | undefined;
      if (s?.name === name) return s.handle;
    }
    return undefined;
  } catch (err) {
    if (err instanceof NftError && err.notFound) return undefined;
    throw err;
  }
}
