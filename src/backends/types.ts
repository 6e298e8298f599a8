import type { ChangeSet, Snapshot } from '../agent/model/types.js';

export interface SyncResult {
  /** Whether the whole ruleset was rewritten. */
  full: boolean;
  /** Bytes handed to the kernel tool. */
  bytes: number;
  /** Rules (or elements) in that input. */
  rules: number;
  /** Rules per table (iptables) or object kind, for the rule-count metrics. */
  rulesByTable: Record<string, number>;
  /** Time spent inside the kernel tool, ms. */
  toolMs: number;
}

/** A proxy mode. Each sync is one kernel transaction per tool and family. */
export interface Backend {
  readonly mode: string;
  sync(snapshot: Snapshot, changes: ChangeSet, opts: { full: boolean }): Promise<SyncResult>;
  /** Removes every rule and chain this mode owns, and nothing else. */
  cleanup(): Promise<void>;
}
