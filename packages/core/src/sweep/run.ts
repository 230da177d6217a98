// The one-process sweep of a table: a small class whose steps are open (the run: start it, or
// take it over on --resume), work (every unfinished segment through the segment worker, in slices,
// under one budget), watch (heartbeat, credentials, pause flag and budget) and close (the run's
// status). A dry run writes nothing, not even the ledger.
import { hostname } from "node:os";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import type { Clients } from "../clients.js";
import { credentialsExpiration, expiredCredentials } from "../credentials.js";
import { isErrorNamed } from "../errors.js";
import { emptySweepCounts, type Ledger, type SweepCounts, type SweepOwner, type SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { sleep } from "../sleep.js";
import { observeThrottling } from "../throttler.js";
import { SweepBudget } from "./budget.js";
import { countItem, emptySamples, type SweepSamples } from "./items.js";
import { setSweepControl, startSweepRun, sumCounts, workerId } from "./leases.js";
import { isProcessAlive, SWEEP_DEFAULTS, SweepBusyError, type SweepPlan } from "./plan.js";
import { oneLine, runSegmentSlice } from "./segment.js";

export interface SweepProgress {
  table: SiteLogixTable;
  /** Items scanned by this sweep run, earlier attempts (checkpoints) included. */
  scanned: number;
  /** DescribeTable's ItemCount (approximate; updated about every six hours on AWS). */
  estimatedTotal: number;
  /** What this process did so far. */
  counts: SweepCounts;
  elapsedMs: number;
  paused: boolean;
  /** Consumed WCU/s over the last two seconds. */
  wcuPerSecond: number;
  /** The WCU/s limit in force (the cap, or lower after throttling); null: none. */
  wcuLimit: number | null;
  throttles: number;
}

export interface SweepReport {
  table: SiteLogixTable;
  tableName: string;
  /** Undefined for a dry run (it records nothing). */
  sweepId?: string;
  status: "finished" | "stopped";
  /** A dry run wrote nothing: `applied` stays 0 and `samples.diffs` shows what would be written. */
  dryRun: boolean;
  /** Why a sweep stopped on its own (credentials); absent when a signal stopped it or it finished. */
  stopReason?: string;
  resumed: boolean;
  totalSegments: number;
  /** What this process did (a resumed run's earlier attempts are in the ledger's run record). */
  counts: SweepCounts;
  durationMs: number;
  samples: SweepSamples;
  throttles: number;
  /** Segments whose worker failed (from the ledger; each with its error). */
  failedSegments?: { segment: number; failedAt: string; error: string }[];
}

export interface SweepOptions {
  clients: Pick<Clients, "dynamodb" | "doc">;
  ledger: Ledger;
  table: SiteLogixTable;
  tableName: string;
  plan: Exclude<SweepPlan, { action: "skip" }>;
  /** Parallel scan segments of a new run (a resumed run keeps its own). */
  segments?: number;
  /** Items in flight (history query + write) over all segments. */
  concurrency?: number;
  maxWcu?: number;
  /** Stops the sweep gracefully: in-flight writes finish, checkpoints are saved. */
  signal?: AbortSignal;
  onProgress?: (progress: SweepProgress) => void;
  progressIntervalMs?: number;
  controlIntervalMs?: number;
  leaseMs?: number;
  sliceMs?: number;
  checkpointIntervalMs?: number;
  sampleLimit?: number;
  credentialsMarginMs?: number;
}

/**
 * Sweeps one table. Returns when every segment reached its end (`finished`) or the signal stopped
 * it (`stopped`, checkpoints saved). Throws on anything that is not an item's problem (missing
 * table, access denied, lost endpoint, lost ownership of the run): the run is marked failed where
 * the ledger can still be reached, its checkpoints stay.
 */
export async function runSweep(options: SweepOptions): Promise<SweepReport> {
  return new Sweep(options).run();
}

class Sweep {
  private readonly dryRun: boolean;
  private readonly started = performance.now();
  private readonly stop = new AbortController();
  private readonly owner: SweepOwner = { host: hostname(), pid: process.pid, heartbeatAt: new Date().toISOString() };
  private readonly holder = workerId();
  private readonly counts = emptySweepCounts();
  private readonly samples = emptySamples();
  private run_?: SweepRun;
  private totalSegments: number;
  private scannedBefore = 0;
  private estimatedTotal = 0;
  private budget!: SweepBudget;
  private fatal: unknown;
  /** Set when the sweep stops itself before its credentials stop working. */
  private stopReason: string | undefined;
  private ended = new Set<number>();

  constructor(private readonly options: SweepOptions) {
    this.dryRun = options.plan.action === "dry-run";
    this.totalSegments = options.segments ?? SWEEP_DEFAULTS.segments;
  }

  async run(): Promise<SweepReport> {
    const pending = await this.open();
    const onCallerStop = () => this.stop.abort();
    this.options.signal?.addEventListener("abort", onCallerStop, { once: true });
    if (this.options.signal?.aborted) this.stop.abort();
    const stopObserving = observeThrottling(this.options.clients.dynamodb, this.budget.onThrottle);
    const watching = this.watch();
    const progressTimer = this.options.onProgress
      ? setInterval(() => this.options.onProgress!(this.progress()), this.options.progressIntervalMs ?? 1000)
      : undefined;
    await Promise.all(pending.map((segment) => this.work(segment)));
    this.stop.abort();
    await watching;
    if (progressTimer) clearInterval(progressTimer);
    this.options.signal?.removeEventListener("abort", onCallerStop);
    stopObserving();
    return this.close();
  }

  /** Step 1: checks, then the run (started, or taken over on --resume); returns the segments to do. */
  private async open(): Promise<number[]> {
    const { clients, ledger, table, tableName, plan } = this.options;
    const description = await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    this.estimatedTotal = description.Table?.ItemCount ?? 0;
    const margin = this.options.credentialsMarginMs ?? SWEEP_DEFAULTS.credentialsMarginMs;
    const expiresAt = await credentialsExpiration(clients.dynamodb);
    if (expiresAt && expiresAt.getTime() - Date.now() < margin) {
      throw new Error(
        `the AWS credentials expire at ${expiresAt.toISOString()}: get fresh ones before sweeping ` +
          "(docs/runbook.md: long sweeps)",
      );
    }
    let sweepId: string | undefined;
    if (plan.action === "start") {
      this.run_ = await startSweepRun(ledger, {
        table,
        totalSegments: this.totalSegments,
        concurrency: this.options.concurrency ?? SWEEP_DEFAULTS.concurrency,
        ...(this.options.maxWcu !== undefined ? { maxWcu: this.options.maxWcu } : {}),
        owner: this.owner,
      });
      sweepId = this.run_.sweepId;
    } else if (plan.action === "resume") {
      this.run_ = await claimRun(ledger, plan.run, this.owner, this.options.leaseMs);
      sweepId = this.run_.sweepId;
      // This invocation's budget replaces the last one's (no --max-wcu: no cap, as for a start).
      await setSweepControl(ledger, this.run_, {
        maxWcu: this.options.maxWcu ?? null,
        concurrency: this.options.concurrency ?? SWEEP_DEFAULTS.concurrency,
      });
      this.totalSegments = plan.run.totalSegments;
    }
    this.budget = new SweepBudget({
      ...(this.dryRun ? {} : { ledger }),
      table,
      ...(sweepId ? { sweepId } : {}),
      holder: this.holder,
      concurrency: this.options.concurrency ?? SWEEP_DEFAULTS.concurrency,
      ...(this.options.maxWcu !== undefined ? { maxWcu: this.options.maxWcu } : {}),
      ...(this.options.controlIntervalMs !== undefined ? { controlIntervalMs: this.options.controlIntervalMs } : {}),
    });
    // The pause flag is read before any work starts (the budget too: a resumed run keeps its own).
    if (this.dryRun) this.budget.pause.set((await ledger.pauseFlag())?.paused === true);
    else await this.budget.refresh();
    const segments = Array.from({ length: this.totalSegments }, (_, s) => s);
    if (!this.run_) return segments;
    const checkpoints = await ledger.checkpoints(table, this.run_.sweepId);
    this.scannedBefore = sumCounts(checkpoints).scanned;
    for (const c of checkpoints) if (c.done) this.ended.add(c.segment);
    return segments.filter((s) => !this.ended.has(s));
  }

  /** Step 2: one segment, slice after slice, until it ends or the sweep stops. */
  private async work(segment: number): Promise<void> {
    const { clients, ledger, table, tableName } = this.options;
    try {
      while (!this.stop.signal.aborted) {
        const slice = await runSegmentSlice(
          {
            clients,
            ledger,
            tableName,
            signal: this.stop.signal,
            budget: this.budget,
            holder: this.holder,
            // This process owns the run: a lease left by its previous owner is its to take.
            force: true,
            finishRun: false,
            dryRun: this.dryRun,
            onItem: (outcome) => countItemInto(this.counts, table, outcome),
            samples: { into: this.samples, limit: this.options.sampleLimit ?? SWEEP_DEFAULTS.sampleLimit },
            ...pick(this.options, ["leaseMs", "checkpointIntervalMs", "controlIntervalMs"]),
          },
          {
            sweepId: this.run_?.sweepId ?? "dry-run",
            table,
            segment,
            totalSegments: this.totalSegments,
            ...(this.options.sliceMs !== undefined ? { sliceMs: this.options.sliceMs } : {}),
          },
        );
        if (slice.done) {
          this.ended.add(segment);
          return;
        }
      }
    } catch (err) {
      if (!(this.stop.signal.aborted && isErrorNamed(err, "AbortError"))) this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.fatal ??= err;
    this.stop.abort();
  }

  /** Step 3: heartbeat with running totals, credentials, pause flag and budget, every few seconds. */
  private async watch(): Promise<void> {
    const { clients, ledger, table } = this.options;
    const interval = this.options.controlIntervalMs ?? SWEEP_DEFAULTS.controlIntervalMs;
    const margin = this.options.credentialsMarginMs ?? SWEEP_DEFAULTS.credentialsMarginMs;
    for (;;) {
      await sleep(interval, this.stop.signal);
      if (this.stop.signal.aborted) return;
      try {
        const expiration = await credentialsExpiration(clients.dynamodb);
        if (expiration && expiration.getTime() - Date.now() < margin) {
          this.stopReason = `the AWS credentials expire at ${expiration.toISOString()} and were not renewed`;
          this.stop.abort();
          return;
        }
        if (this.dryRun) this.budget.pause.set((await ledger.pauseFlag())?.paused === true);
        else await this.budget.refresh();
        if (this.run_) {
          this.owner.heartbeatAt = new Date().toISOString();
          const counts = sumCounts(await ledger.checkpoints(table, this.run_.sweepId));
          if (!(await ledger.updateSweep(this.run_, this.owner, { owner: this.owner, counts }))) {
            throw new Error(`${table}: sweep ${this.run_.sweepId} was taken over by another process; this one stops`);
          }
        }
      } catch (err) {
        this.fail(err);
      }
    }
  }

  private progress(): SweepProgress {
    const stats = this.budget.throttler.stats;
    return {
      table: this.options.table,
      scanned: this.scannedBefore + this.counts.scanned,
      estimatedTotal: this.estimatedTotal,
      counts: { ...this.counts },
      elapsedMs: performance.now() - this.started,
      paused: this.budget.pause.paused,
      wcuPerSecond: this.budget.throttler.achievedRate(),
      wcuLimit: stats.limit,
      throttles: stats.throttles,
    };
  }

  /** Step 4: the run's status (finished, stopped or failed) and the report. */
  private async close(): Promise<SweepReport> {
    const { ledger, table } = this.options;
    // Credentials that stopped working are a stop, not a failure: nothing is wrong with the sweep,
    // the checkpoints hold, and --resume with fresh credentials continues it.
    const expired = expiredCredentials(this.fatal);
    if (expired) {
      this.stopReason = expired;
      this.fatal = undefined;
    }
    const finished =
      this.fatal === undefined && this.stopReason === undefined && this.ended.size === this.totalSegments;
    let failedSegments: SweepReport["failedSegments"];
    if (this.run_) {
      const now = new Date().toISOString();
      const fields: Partial<SweepRun> =
        this.fatal !== undefined
          ? { status: "failed", stoppedAt: now, error: oneLine(this.fatal) }
          : finished
            ? { status: "finished", finishedAt: now }
            : { status: "stopped", stoppedAt: now, ...(this.stopReason ? { error: this.stopReason } : {}) };
      try {
        const checkpoints = await ledger.checkpoints(table, this.run_.sweepId);
        failedSegments = failedOf(checkpoints);
        await ledger.updateSweep(this.run_, this.owner, { ...fields, counts: sumCounts(checkpoints) });
      } catch (err) {
        // The ledger may be what failed; the run then stays "running" with a stale heartbeat, which
        // --resume takes over. Expired credentials cannot write it either: the stop stands.
        if (!expiredCredentials(err)) this.fatal ??= err;
        else if (this.stopReason)
          this.stopReason += " (the ledger could not record it with them; --resume takes the run over)";
      }
    }
    this.options.onProgress?.(this.progress());
    if (this.fatal !== undefined) throw this.fatal;
    return {
      table,
      tableName: this.options.tableName,
      ...(this.run_ ? { sweepId: this.run_.sweepId } : {}),
      status: finished ? "finished" : "stopped",
      dryRun: this.dryRun,
      ...(this.stopReason ? { stopReason: this.stopReason } : {}),
      resumed: this.options.plan.action === "resume",
      totalSegments: this.totalSegments,
      counts: this.counts,
      durationMs: Math.round(performance.now() - this.started),
      samples: this.samples,
      throttles: this.budget.throttler.stats.throttles,
      ...(failedSegments?.length ? { failedSegments } : {}),
    };
  }
}

/**
 * Takes a run over for --resume: a dead process on this host holds no lease; a live one, or one
 * elsewhere, until its heartbeat is stale.
 */
export async function claimRun(
  ledger: Ledger,
  run: SweepRun,
  owner: SweepOwner,
  leaseMs: number = SWEEP_DEFAULTS.leaseMs,
): Promise<SweepRun> {
  const previous = run.owner;
  const ownerIsDead = previous?.host === owner.host && previous.pid !== process.pid && !isProcessAlive(previous.pid);
  const staleBefore = ownerIsDead ? "9999" : new Date(Date.now() - leaseMs).toISOString();
  if (!(await ledger.claimSweep(run.table, run.sweepId, owner, staleBefore)))
    throw new SweepBusyError((await ledger.latestSweep(run.table)) ?? run);
  return { ...run, status: "running", owner };
}

export function failedOf(segments: { segment: number; failedAt?: string; error?: string }[]) {
  return segments
    .filter((s) => s.failedAt)
    .map((s) => ({ segment: s.segment, failedAt: s.failedAt!, error: s.error ?? "" }));
}

function countItemInto(counts: SweepCounts, table: SiteLogixTable, outcome: Parameters<typeof countItem>[2]) {
  countItem(counts, table, outcome);
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as Partial<Pick<T, K>>;
}
