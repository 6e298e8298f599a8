/**
 * Command-line flags, named and defaulted as upstream kube-proxy's, plus this
 * project's own (--manifests, --once, --dry-run). Parsing is pure: it returns
 * the options or a usage error naming the flag and what it expects.
 */
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { parseCIDR } from './util/addr.js';
import { parseDuration } from './util/duration.js';

export type ProxyMode = 'iptables';

export interface AgentOptions {
  proxyMode: ProxyMode;
  manifests?: string;
  hostnameOverride: string;
  clusterCIDR?: string;
  masqueradeAll: boolean;
  masqueradeBit: number;
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  once: boolean;
  dryRun: boolean;
  cleanup: boolean;
  verbosity: number;
}

export class UsageError extends Error {
  readonly exitCode = 2;
}

export type ParseResult = { kind: 'options'; options: AgentOptions } | { kind: 'exit'; code: number; output: string };

const MODES = ['iptables'] as const;

function buildCommand(): Command {
  return new Command('kube-proxy-ts')
    .description('Programs this node\'s netfilter rules so that traffic to Kubernetes Services reaches their endpoints.')
    .addOption(new Option('--proxy-mode <mode>', 'which proxy mode to use').choices(MODES).default('iptables'))
    .option('--manifests <dir>', 'read Services, EndpointSlices and Nodes from the YAML/JSON files in this directory, and watch it for changes')
    .option('--hostname-override <name>', 'the name of this node, as in the Node object and in endpoints\' nodeName (default: the host name)')
    .option('--cluster-cidr <cidr>', 'the pod CIDR of the cluster; traffic to ClusterIPs from outside it is masqueraded')
    .option('--masquerade-all', 'masquerade all traffic sent to a ClusterIP', false)
    .option('--iptables-masquerade-bit <bit>', 'the fwmark bit (0-31) that marks packets to masquerade', '14')
    .option('--iptables-sync-period <duration>', 'the longest time between two full syncs (e.g. 30s, 1m)', '30s')
    .option('--iptables-min-sync-period <duration>', 'the shortest time between two syncs: changes arriving faster are coalesced', '1s')
    .option('--once', 'sync the rules once, then exit (0 on success)', false)
    .option('--dry-run', 'print the iptables-restore input the agent would apply, and change nothing', false)
    .option('--cleanup', 'remove every rule and chain this proxy owns, then exit', false)
    .option('--v <level>', 'log verbosity: 0 quiet, 2 a line per sync, 4 per-object detail', '0')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
}

export function parseArgs(argv: string[]): ParseResult {
  const cmd = buildCommand();
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { kind: 'exit', code: 0, output: out };
      return { kind: 'exit', code: 2, output: out || `${err.message}\n` };
    }
    throw err;
  }
  try {
    return { kind: 'options', options: validate(cmd.opts()) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'exit', code: 2, output: `error: ${err.message}\n` };
    throw err;
  }
}

export function helpText(): string {
  return buildCommand().helpInformation();
}

type Raw = Record<string, string | boolean | undefined>;

function durationFlag(raw: Raw, flag: string, prop: string, min: number): number {
  const text = String(raw[prop]);
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${flag}: ${JSON.stringify(text)} is not a duration (e.g. 1s, 500ms, 1m30s)`);
  if (ms < min) throw new UsageError(`--${flag}: must be at least ${min}ms, got ${text}`);
  return ms;
}

function validate(raw: Raw): AgentOptions {
  const bitText = String(raw.iptablesMasqueradeBit);
  if (!/^\d+$/.test(bitText) || Number(bitText) > 31) throw new UsageError(`--iptables-masquerade-bit: must be an integer from 0 to 31, got ${JSON.stringify(bitText)}`);
  const vText = String(raw.v);
  if (!/^\d+$/.test(vText)) throw new UsageError(`--v: must be a non-negative integer, got ${JSON.stringify(vText)}`);
  let clusterCIDR: string | undefined;
  if (typeof raw.clusterCidr === 'string' && raw.clusterCidr !== '') {
    const parsed = parseCIDR(raw.clusterCidr);
    if (!parsed || parsed.family !== 'IPv4') throw new UsageError(`--cluster-cidr: ${JSON.stringify(raw.clusterCidr)} is not an IPv4 CIDR (e.g. 10.244.0.0/16)`);
    clusterCIDR = parsed.cidr;
  }
  const syncPeriodMs = durationFlag(raw, 'iptables-sync-period', 'iptablesSyncPeriod', 1);
  const minSyncPeriodMs = durationFlag(raw, 'iptables-min-sync-period', 'iptablesMinSyncPeriod', 0);
  const hostnameOverride = (typeof raw.hostnameOverride === 'string' && raw.hostnameOverride.trim() !== '' ? raw.hostnameOverride : hostname()).trim().toLowerCase();
  const manifests = typeof raw.manifests === 'string' ? raw.manifests : undefined;
  const cleanup = raw.cleanup === true;
  if (!cleanup) {
    if (manifests === undefined) {
      throw new UsageError('--manifests: required: the directory of Service/EndpointSlice manifests to proxy (watching an API server is not implemented yet)');
    }
    let isDir = false;
    try {
      isDir = statSync(manifests).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new UsageError(`--manifests: ${JSON.stringify(manifests)} is not a readable directory`);
  }
  if (raw.once === true && raw.dryRun === true) throw new UsageError('--once and --dry-run cannot be used together');
  return {
    proxyMode: raw.proxyMode as ProxyMode,
    ...(manifests !== undefined ? { manifests } : {}),
    hostnameOverride,
    ...(clusterCIDR ? { clusterCIDR } : {}),
    masqueradeAll: raw.masqueradeAll === true,
    masqueradeBit: Number(bitText),
    syncPeriodMs,
    minSyncPeriodMs,
    once: raw.once === true,
    dryRun: raw.dryRun === true,
    cleanup,
    verbosity: Number(vText),
  };
}
