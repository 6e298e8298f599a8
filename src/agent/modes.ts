/**
 * The proxy modes from the agent's side: which pipelines a mode runs on,
 * the read-only tools of --dry-run, and the cleanups.
 *
 * Switching modes, as upstream: starting in nftables mode removes the rules
 * this project (or upstream kube-proxy) left in iptables, and starting in
 * iptables mode removes the `kube-proxy` nftables tables. `--cleanup`
 * removes both. Each cleanup owns only what is ours: our KUBE-* chains and
 * jumps, our two nftables tables.
 */
import type { AgentOptions } from './options.js';
import type { Logger } from './log.js';
import type { FamilyStores } from './model/store.js';
import { makeNftPipelines, makePipelines, nftFamilies, resolveTools } from './pipeline.js';
import type { FamilyPipeline, Tools } from './pipeline.js';
import type { IPFamily } from './model/types.js';
import type { IptablesTool } from '../backends/iptables/tool.js';
import { RestoreError } from '../backends/iptables/tool.js';
import { IptablesBackend } from '../backends/iptables/backend.js';
import { DEFAULT_RENDER_CONFIG } from '../backends/iptables/render.js';
import { cleanupNftables } from '../backends/nftables/backend.js';
import { execApplier } from '../backends/nftables/nft/applier.js';
import type { NftApplier } from '../backends/nftables/nft/applier.js';
import { NftError } from '../backends/nftables/nft/run.js';
import { TABLE } from '../backends/nftables/names.js';

/** A fatal problem found while starting (exit 1 with this message). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Whether an error is the kernel tool refusing a transaction (counted in the failure metrics). */
export const isKernelToolError = (err: unknown): boolean => err instanceof RestoreError || err instanceof NftError;

/** A read-only view of the real iptables tool: reads the live state when it can, never writes. */
function dryRunTool(real: IptablesTool, log: Logger): IptablesTool {
  return {
    async save() {
      try {
        return await real.save();
      } catch (err) {
        log.info(0, 'cannot read current rules; printing the input for an empty ruleset', { err: (err as Error).message });
        return '';
      }
    },
    async restore() {
      throw new Error('dry run: refusing to apply');
    },
    chainExists: (table, chain) => real.chainExists(table, chain),
  };
}

/** A read-only view of nft: lists (an empty table when it cannot), never applies. */
function dryRunNft(real: NftApplier, log: Logger): NftApplier {
  return {
    async apply() {
      throw new Error('dry run: refusing to apply');
    },
    async list(family, table) {
      try {
        return await real.list(family, table);
      } catch (err) {
        log.info(0, 'cannot read the current nftables table; printing the input for an empty one', { err: (err as Error).message });
        return { exists: false, chains: new Map(), sets: new Map(), maps: new Map() };
      }
    },
    setHandle: async () => undefined,
  };
}

/** The real nft, or the injected one. */
const nftOf = (deps: Tools): NftApplier => deps.nft ?? execApplier();

/** Whether the tools of this mode were injected (tests): then nothing else on the host is touched. */
export function injected(opts: AgentOptions, deps: Tools): boolean {
  return opts.proxyMode === 'nftables' ? deps.nft !== undefined : deps.iptables !== undefined;
}

/**
 * The pipelines of the configured mode. In nftables mode, fails with a
 * StartupError when nft cannot run here (as upstream, which refuses to start
 * without a working nftables).
 */
export async function modePipelines(
  opts: AgentOptions,
  deps: Tools,
  log: Logger,
  o: { dryRun?: boolean; localAddresses?: readonly string[] } = {},
): Promise<{ pipelines: FamilyPipeline[]; stores: FamilyStores }> {
  if (opts.proxyMode === 'nftables') {
    const nft = nftOf(deps);
    try {
      await nft.setHandle('ip', TABLE, 'cluster-ips');
    } catch (err) {
      throw new StartupError(`nftables mode needs a working nft: ${(err as Error).message}`);
    }
    return makeNftPipelines(opts, o.dryRun ? dryRunNft(nft, log) : nft, nftFamilies(deps.nft !== undefined), o.localAddresses);
  }
  const tools = await resolveTools(deps, log);
  const used = o.dryRun ? new Map([...tools].map(([f, t]) => [f, dryRunTool(t, log)])) : tools;
  return makePipelines(opts, used, o.localAddresses);
}

async function cleanupIptables(deps: Tools, log: Logger): Promise<IPFamily[]> {
  const tools = await resolveTools(deps, log);
  const done: IPFamily[] = [];
  for (const [family, tool] of tools) {
    await new IptablesBackend(tool, { ...DEFAULT_RENDER_CONFIG, family }).cleanup();
    done.push(family);
  }
  return done;
}

/** Whether an nft failure only says that nft is not installed (nothing of ours can be there then). */
const nftMissing = (err: unknown): boolean => err instanceof NftError && /command not found/.test(err.message);

/**
 * Removes the other mode's rules (a node switched from iptables to nftables
 * mode or back). Best effort: a failure is logged and the agent goes on.
 * With injected tools (tests), only injected tools of the other mode are used.
 */
export async function cleanupOtherMode(opts: AgentOptions, deps: Tools, log: Logger): Promise<void> {
  const realHost = !injected(opts, deps);
  try {
    if (opts.proxyMode === 'nftables') {
      if (!realHost && !deps.iptables) return;
      await cleanupIptables(deps, log);
      log.info(2, 'removed leftover iptables rules of kube-proxy', { mode: 'nftables' });
    } else {
      if (!realHost && !deps.nft) return;
      await cleanupNftables(nftOf(deps));
      log.info(2, 'removed leftover kube-proxy nftables tables', { mode: 'iptables' });
    }
  } catch (err) {
    if (nftMissing(err)) return;
    log.warn('cannot remove the rules of the other proxy mode; they stay in place', { mode: opts.proxyMode, err: (err as Error).message });
  }
}

/**
 * `--cleanup`: removes the rules of every mode. Resolves to the exit code (1
 * when one cleanup failed). With injected tools (tests), only those are used.
 */
export async function cleanupAllModes(deps: Tools, log: Logger): Promise<number> {
  const someInjected = deps.iptables !== undefined || deps.nft !== undefined;
  let code = 0;
  if (!someInjected || deps.iptables) {
    try {
      const families = await cleanupIptables(deps, log);
      log.info(0, 'removed all kube-proxy-ts rules and chains', { mode: 'iptables', families: families.join(',') });
    } catch (err) {
      code = 1;
      log.error('cannot remove the iptables rules', { mode: 'iptables', err: (err as Error).message });
    }
  }
  if (!someInjected || deps.nft) {
    try {
      await cleanupNftables(nftOf(deps));
      log.info(0, 'removed the kube-proxy nftables tables', { mode: 'nftables', tables: 'ip kube-proxy,ip6 kube-proxy' });
    } catch (err) {
      if (!nftMissing(err)) {
        code = 1;
        log.error('cannot remove the nftables tables', { mode: 'nftables', err: (err as Error).message });
      }
    }
  }
  return code;
}
