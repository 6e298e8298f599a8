/**
 * Where `kube-proxy-ts trace` gets its rules, and which tracer follows the
 * packet through them (`--mode iptables|nftables|auto`, default auto).
 *
 * iptables   the live rules from `iptables-save` (`ip6tables-save` for an
 *            IPv6 destination), or an iptables-save dump; traced by
 *            src/trace/iptables.
 * nftables   the live rules from `nft list ruleset ip` and `nft list ruleset
 *            inet` (`ip6` and `inet` for IPv6): every table whose base chains
 *            see the packet, not only `ip kube-proxy`, since other tables'
 *            filter and nat chains act on it too (by hook and priority, as the
 *            kernel runs them); or a dump in `nft list ruleset` / `nft list
 *            table` form or `nft -f` input. Traced by src/trace/nftables. With
 *            iptables-nft (Debian's default), the iptables rules are nftables
 *            tables too (`ip nat`, `ip filter`) and are followed as well.
 * auto       live rules: nftables when `nft list table ip kube-proxy` (`ip6
 *            kube-proxy` for IPv6) succeeds, otherwise iptables (also when nft
 *            is not installed). Why that order when both sets of rules exist:
 *            the agent removes the other mode's rules when it starts (nftables
 *            mode deletes our iptables chains, iptables mode deletes our
 *            nftables tables), so our nftables table exists only while an
 *            nftables-mode agent owns the node, or for the moment a node
 *            switched back to iptables mode has not started its agent yet, when
 *            the nftables rules are still the ones doing the work. Give
 *            `--mode` to choose otherwise. A permission error from nft is
 *            reported (exit 1), not taken as a reason to try iptables-save.
 *            With `--input`, by content: iptables-save text (`*nat`, `:CHAIN`,
 *            `-A …`) or nftables text (`table …`, `add …`, `flush …`); anything
 *            else is an error naming the file.
 *
 * Errors (unreadable or unparsable rules, nft or iptables-save missing or not
 * permitted) are InputError: the command exits 1 with the message.
 */
import type { IPFamily } from './model/types.js';
import { formatTrace } from '../trace/iptables/format.js';
import { parseIptablesRules } from '../trace/iptables/parse.js';
import type { Ruleset } from '../trace/iptables/ruleset.js';
import { tracePacket } from '../trace/iptables/trace.js';
import type { TraceOptions, TracePacket, TraceResult } from '../trace/iptables/trace.js';
import { formatNftTrace, parseNftRuleset, traceNftPacket, type NftRuleset } from '../trace/nftables/index.js';

export const TRACE_MODES = ['auto', 'iptables', 'nftables'] as const;
export type TraceModeFlag = (typeof TRACE_MODES)[number];
export type TraceMode = Exclude<TraceModeFlag, 'auto'>;

/** Rules (or addresses) that cannot be read or parsed: exit status 1. */
export class InputError extends Error {}

/** The IO the rule loading needs (a subset of TraceCommandIO). */
export interface RulesIO {
  /** All of standard input (for `--input -`). */
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
  /** Runs a command and resolves with its standard output; rejects with a readable Error on failure. */
  run(file: string, args: string[]): Promise<string>;
}

export interface RulesRequest {
  family: IPFamily;
  mode: TraceModeFlag;
  /** A file, `-` for standard input; unset: the live rules. */
  input?: string;
}

interface Loaded<M extends TraceMode, R> {
  mode: M;
  rules: R;
  /** What was read: a file name, `standard input`, or the commands run. */
  source: string;
  /** Why this mode: `--mode nftables`, `auto: table ip kube-proxy exists`, … */
  reason: string;
  /** Things the reader should know (e.g. no kube-proxy table in the rules). */
  notes: string[];
}

export type LoadedRules = Loaded<'iptables', Ruleset> | Loaded<'nftables', NftRuleset>;

const NFT_WORDS = new Set(['table', 'add', 'create', 'insert', 'replace', 'delete', 'destroy', 'flush', 'define', 'include', 'rename', 'reset']);

export type DetectedKind = { kind: TraceMode } | { kind: 'empty' } | { kind: 'unknown'; line: number; text: string };

/**
 * What kind of rules `text` holds, from its first line that is neither blank
 * nor a `#` comment: iptables-save / iptables-restore text starts with a table
 * (`*nat`), a chain (`:KUBE-SERVICES - [0:0]`), a rule (`-A …`) or `COMMIT`;
 * nftables text with `table …` (`nft list` output) or a command (`add …`,
 * `flush …`, … as in `nft -f` input).
 */
export function detectRulesKind(text: string): DetectedKind {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^\*\S+$/.test(line) || /^:\S+(\s|$)/.test(line) || /^-[AIRDNXFPEZ]\s/.test(line) || line === 'COMMIT') return { kind: 'iptables' };
    const word = /^[a-z]+/.exec(line)?.[0];
    if (word !== undefined && NFT_WORDS.has(word)) return { kind: 'nftables' };
    return { kind: 'unknown', line: i + 1, text: line.length > 60 ? `${line.slice(0, 57)}...` : line };
  }
  return { kind: 'empty' };
}

const nftFamily = (family: IPFamily): 'ip' | 'ip6' => (family === 'IPv6' ? 'ip6' : 'ip');
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const DENIED = /Operation not permitted|Permission denied|you must be root/i;

/** A failed command's message, with what to do about a permission error. */
function runFailure(err: unknown): string {
  const m = message(err);
  return DENIED.test(m) ? `${m} (reading the rules needs root, or CAP_NET_ADMIN)` : m;
}

function parseAs(mode: TraceMode, text: string, source: string, reason: string): LoadedRules {
  try {
    if (mode === 'iptables') return { mode, rules: parseIptablesRules(text), source, reason, notes: [] };
    return { mode, rules: parseNftRuleset(text), source, reason, notes: [] };
  } catch (err) {
    const other = detectRulesKind(text);
    const hint = other.kind !== mode && (other.kind === 'iptables' || other.kind === 'nftables') ? ` (they look like ${other.kind} rules: try --mode ${other.kind} or auto)` : '';
    throw new InputError(`cannot parse the ${mode} rules from ${source}: ${message(err)}${hint}`);
  }
}

async function readInput(input: string, io: RulesIO): Promise<{ text: string; source: string }> {
  if (input === '-') {
    try {
      return { text: await io.readStdin(), source: 'standard input' };
    } catch (err) {
      throw new InputError(`cannot read the rules from standard input: ${message(err)}`);
    }
  }
  try {
    return { text: await io.readFile(input), source: input };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InputError(`cannot read the rules from ${input}: ${e.code === 'ENOENT' ? 'no such file' : message(err)}`);
  }
}

async function loadInput(input: string, mode: TraceModeFlag, io: RulesIO): Promise<LoadedRules> {
  const { text, source } = await readInput(input, io);
  if (mode !== 'auto') return parseAs(mode, text, source, `--mode ${mode}`);
  const kind = detectRulesKind(text);
  if (kind.kind === 'empty') throw new InputError(`cannot trace through ${source}: it holds no rules (empty, or only comments)`);
  if (kind.kind === 'unknown') {
    throw new InputError(
      `cannot tell what kind of rules ${source} holds: line ${kind.line} (${JSON.stringify(kind.text)}) starts neither iptables-save output ` +
        '(*nat, :CHAIN, -A …) nor nftables rules (table …, add …); give --mode iptables or --mode nftables if it is one of them',
    );
  }
  return parseAs(kind.kind, text, source, `auto: ${source} holds ${kind.kind} rules`);
}

const LIVE = '(the live rules of this network namespace)';

async function loadLiveIptables(family: IPFamily, reason: string, io: RulesIO, nftFailure?: string): Promise<LoadedRules> {
  const tool = family === 'IPv6' ? 'ip6tables-save' : 'iptables-save';
  let text: string;
  try {
    text = await io.run(tool, []);
  } catch (err) {
    throw new InputError(`cannot read the live rules: ${runFailure(err)}${nftFailure === undefined ? '' : ` (and nftables: ${nftFailure})`}`);
  }
  return parseAs('iptables', text, `${tool} ${LIVE}`, reason);
}

async function loadLiveNftables(family: IPFamily, reason: string, io: RulesIO): Promise<LoadedRules> {
  const families = [nftFamily(family), 'inet'];
  const commands = families.map((f) => ['list', 'ruleset', f]);
  const source = `${commands.map((c) => `nft ${c.join(' ')}`).join(', ')} ${LIVE}`;
  let texts: string[];
  try {
    texts = await Promise.all(commands.map((args) => io.run('nft', args)));
  } catch (err) {
    throw new InputError(`cannot read the live rules: ${runFailure(err)}`);
  }
  // Parsed one by one, so a parse error names the command and its own line numbers.
  const parsed = texts.map((text, i) => parseAs('nftables', text, `nft ${commands[i]!.join(' ')}`, reason));
  const tables: NftRuleset['tables'] = new Map();
  for (const p of parsed) for (const [key, table] of (p.rules as NftRuleset).tables) tables.set(key, table);
  return { mode: 'nftables', rules: { tables }, source, reason, notes: [] };
}

/** Why `nft list table … kube-proxy` failed, in a few words. */
function nftProbeFailure(err: unknown, table: string): string {
  const m = message(err);
  if (/command not found|ENOENT/.test(m) && !/No such file or directory/.test(m)) return 'nft is not installed';
  if (/No such file or directory|does not exist/.test(m)) return `no table ${table}`;
  return m;
}

async function loadLive(req: RulesRequest, io: RulesIO): Promise<LoadedRules> {
  if (req.mode === 'iptables') return loadLiveIptables(req.family, '--mode iptables', io);
  if (req.mode === 'nftables') return loadLiveNftables(req.family, '--mode nftables', io);
  const fam = nftFamily(req.family);
  const table = `${fam} kube-proxy`;
  try {
    await io.run('nft', ['list', 'table', fam, 'kube-proxy']);
  } catch (err) {
    // Not permitted to ask nft: iptables-save is not either; say so rather than fall back.
    if (DENIED.test(message(err))) throw new InputError(`cannot read the live rules: ${runFailure(err)}`);
    const why = nftProbeFailure(err, table);
    return loadLiveIptables(req.family, `auto: ${why}`, io, why);
  }
  return loadLiveNftables(req.family, `auto: table ${table} exists`, io);
}

/** Reads and parses the rules `req` asks for (see the file header for the modes). */
export async function loadRules(req: RulesRequest, io: RulesIO): Promise<LoadedRules> {
  const loaded = req.input !== undefined ? await loadInput(req.input, req.mode, io) : await loadLive(req, io);
  if (loaded.mode === 'nftables') {
    const fam = nftFamily(req.family);
    const tables = [...loaded.rules.tables.values()];
    if (!tables.some((t) => t.family === fam || t.family === 'inet')) {
      loaded.notes.push(`the rules have no ${fam} or inet table: no nftables chain sees this ${req.family} packet`);
    } else if (!loaded.rules.tables.has(`${fam} kube-proxy`)) {
      loaded.notes.push(`the rules have no table ${fam} kube-proxy: kube-proxy does not program nftables for ${req.family} here`);
    }
  }
  return loaded;
}

/** Traces `packet` through the loaded rules with the tracer of their mode. */
export function traceLoaded(loaded: LoadedRules, packet: TracePacket, opts: TraceOptions): TraceResult {
  try {
    return loaded.mode === 'iptables' ? tracePacket(loaded.rules, packet, opts) : traceNftPacket(loaded.rules, packet, opts);
  } catch (err) {
    throw new InputError(message(err));
  }
}

/** The readable explanation of a trace through the loaded rules. */
export function formatLoaded(loaded: LoadedRules, result: TraceResult): string {
  return loaded.mode === 'iptables' ? formatTrace(result) : formatNftTrace(result);
}

/** The chains a packet passes, as the mode names them (for the packet line). */
export function hookNames(mode: TraceMode, origin: TracePacket['origin']): string {
  if (mode === 'iptables') return origin === 'local' ? 'OUTPUT, POSTROUTING' : 'PREROUTING, then INPUT or FORWARD';
  return origin === 'local' ? 'hooks output, postrouting' : 'hooks prerouting, then input or forward';
}
