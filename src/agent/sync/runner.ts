/**
 * The bounded-frequency sync runner, like upstream's: bursts of triggers
 * coalesce into one sync at most every `minSyncPeriod`; a sync runs at least
 * every `syncPeriod`; a sync is full when `fullSyncPeriod` (upstream: one
 * hour) has passed since the last full one, so the periodic syncs in between
 * cost what changed (upstream's iptables and nftables proxiers do the same);
 * a failed sync is retried with exponential backoff and forces the next sync
 * to be full.
 */
export interface SyncRunnerOptions {
  minSyncPeriodMs: number;
  syncPeriodMs: number;
  /** The longest time between two full syncs; default one hour, as upstream. */
  fullSyncPeriodMs?: number;
  /** First retry delay after a failure; doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  run(opts: { full: boolean }): Promise<void>;
  onError?(err: unknown, retryInMs: number): void;
}

/** Upstream's FullSyncPeriod. */
export const FULL_SYNC_PERIOD_MS = 60 * 60 * 1000;

export class SyncRunner {
  private running = false;
  private pending = false;
  private forceFull = true;
  private lastStart = -Infinity;
  private lastFull = -Infinity;
  private retryAt = 0;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private periodic: NodeJS.Timeout | undefined;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  syncs = 0;
  failures = 0;

  constructor(private readonly opts: SyncRunnerOptions) {
    this.backoff = opts.initialBackoffMs ?? 1000;
  }

  /** Asks for a sync (partial unless one is already due to be full). */
  trigger(): void {
    if (this.stopped) return;
    this.pending = true;
    this.schedule();
  }

  /** Asks for a full sync. */
  triggerFull(): void {
    this.forceFull = true;
    this.trigger();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.periodic);
    return this.idle();
  }

  /** Resolves when no sync is running or waiting. */
  idle(): Promise<void> {
    if (!this.running && (!this.pending || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.running || this.stopped || !this.pending) return;
    const now = Date.now();
    const at = Math.max(now, this.lastStart + this.opts.minSyncPeriodMs, this.retryAt);
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => void this.runOnce(), at - now);
  }

  private async runOnce(): Promise<void> {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.running || this.stopped) return;
    this.running = true;
    this.pending = false;
    this.lastStart = Date.now();
    const full = this.forceFull || this.lastStart - this.lastFull >= (this.opts.fullSyncPeriodMs ?? FULL_SYNC_PERIOD_MS);
    this.forceFull = false;
    try {
      await this.opts.run({ full });
      if (full) this.lastFull = this.lastStart;
      this.syncs++;
      this.backoff = this.opts.initialBackoffMs ?? 1000;
      this.retryAt = 0;
    } catch (err) {
      this.failures++;
      this.forceFull = true;
      this.pending = true;
      this.retryAt = Date.now() + this.backoff;
      this.opts.onError?.(err, this.backoff);
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
    } finally {
      this.running = false;
    }
    if (!this.stopped) {
      clearTimeout(this.periodic);
      this.periodic = setTimeout(() => this.trigger(), this.opts.syncPeriodMs);
    }
    this.schedule();
    if (!this.pending || this.stopped) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
