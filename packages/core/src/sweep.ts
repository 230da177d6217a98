// The sweep: a one-time, resumable, throttled backfill of old items. Parallel scan segments (the
// inspector) feed items to the rules and the applier (one conditional write per item that needs
// work, none otherwise) under a concurrency limit and a WCU budget (the throttler). Each segment's
// position is checkpointed in the ledger once its page is fully applied, so a crash costs at most
// the pages in flight; the operator's pause flag is read every few seconds.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { DescribeTableCommand, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { applyPatch, type ApplyResult } from "./applier.js";
import type { Clients } from "./clients.js";
import { credentialsExpiration, expiredCredentials } from "./credentials.js";
import { scanSegment, sweepAttributes } from "./inspector.js";
import {
  addSweepCounts,
  emptySweepCounts,
  type Ledger,
  type SweepCheckpoint,
  type SweepCounts,
  type SweepOwner,
  type SweepRun,
} from "./ledger/index.js";
import { derivePatchFor } from "./rule-context.js";
import { describeBasis, inScope, type Assignment, type Item, type Patch, type Violation } from "./rules.js";
import type { SiteLogixTable } from "./schema.js";
import { sleep } from "./sleep.js";
import { ConcurrencyLimit, observeThrottling, retryThrottled, Throttler } from "./throttler.js";
import { isErrorNamed } from "./errors.js";

export const SWEEP_DEFAULTS = {
  segments: 8,
  concurrency: 32,
  /** How often a running sweep reads the pause flag and refreshes its heartbeat. */
  controlIntervalMs: 2000,
  /** A run whose heartbeat is older than this may be taken over by `--resume` from another host. */
  leaseMs: 30_000,
  sampleLimit: 20,
  /**
   * A sweep stops gracefully when its credentials expire within this time and were not renewed (the
   * SDK renews refreshable credentials 5 minutes ahead; fixed ones, as `sst shell` passes, never).
   */
  credentialsMarginMs: 60_000,
} as const;

/**
 * Client settings for a sweep: a socket for every item in flight plus the scans and the ledger
 * (the SDK's default of 50 sockets would otherwise cap the concurrency and queue requests).
 */
export function sweepClientConfig(options: { concurrency?: number; segments?: number } = {}): DynamoDBClientConfig {
  const maxSockets =
    (options.concurrency ?? SWEEP_DEFAULTS.concurrency) + (options.segments ?? SWEEP_DEFAULTS.segments) + 4;
  return { requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } } };
}

/** What to do for a table, decided before anything runs (so a multi-table sweep fails up front). */
export type SweepPlan =
  | { action: "start" }
  | { action: "resume"; run: SweepRun }
  /** `--resume` and the latest sweep of the table finished: nothing to do. */
  | { action: "skip"; run: SweepRun }
  | { action: "dry-run" };

/** An unfinished sweep exists and `--resume` was not given. */
export class UnfinishedSweepError extends Error {
  constructor(readonly run: SweepRun) {
    super(
      `${run.table}: an unfinished sweep exists (id ${run.sweepId}, started ${run.startedAt}, ${run.status}${run.error ? `: ${run.error}` : ""}); ` +
        `continue it with --resume`,
    );
    this.name = "UnfinishedSweepError";
  }
}

/** Another live process runs the sweep. */
export class SweepBusyError extends Error {
  constructor(readonly run: SweepRun) {
    const owner = run.owner;
    super(
      `${run.table}: sweep ${run.sweepId} is running in process ${owner?.pid} on ${owner?.host} (heartbeat ${owner?.heartbeatAt}); ` +
        `wait for it or stop it (Ctrl-C there) before resuming`,
    );
    this.name = "SweepBusyError";
  }
}

export async function planSweep(
  ledger: Ledger,
  table: SiteLogixTable,
  options: { resume?: boolean; dryRun?: boolean },
): Promise<SweepPlan> {
  if (options.dryRun) return { action: "dry-run" };
  const latest = await ledger.latestSweep(table);
  const unfinished = latest !== undefined && latest.status !== "finished";
  if (!options.resume) {
    if (unfinished) throw new UnfinishedSweepError(latest);
    return { action: "start" };
  }
  if (unfinished) return { action: "resume", run: latest };
  return latest ? { action: "skip", run: latest } : { action: "start" };
}

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

export interface SweepDiff {
  key: Record<string, string>;
  /** Target attributes and where their value comes from; never values (they may be personal data). */
  set: { attribute: string; was: "absent" | "empty" | "stale"; from: string }[];
}

export interface SweepSamples {
  rejected: { key: Record<string, string>; reason: string }[];
  violations: { key: Record<string, string>; violations: Violation[] }[];
  /** Dry run: what would be written. */
  diffs: SweepDiff[];
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
  /** Stops the sweep gracefully: in-flight writes finish, checkpoints stay at the last full page. */
  signal?: AbortSignal;
  onProgress?: (progress: SweepProgress) => void;
  progressIntervalMs?: number;
  controlIntervalMs?: number;
  leaseMs?: number;
  sampleLimit?: number;
  credentialsMarginMs?: number;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

function describeAssignment(a: Assignment): SweepDiff["set"][number] {
  return {
    attribute: a.attribute,
    was: a.current === undefined ? "absent" : a.current === "" ? "empty" : "stale",
    from: describeBasis(a.basis),
  };
}

/** Waits while the operator's pause flag is set. */
class PauseGate {
  private resume?: { promise: Promise<void>; release: () => void };

  get paused(): boolean {
    return this.resume !== undefined;
  }

  set(paused: boolean): void {
    if (paused && !this.resume) {
      let release!: () => void;
      const promise = new Promise<void>((r) => (release = r));
      this.resume = { promise, release };
    } else if (!paused && this.resume) {
      this.resume.release();
      this.resume = undefined;
    }
  }

  async wait(signal: AbortSignal): Promise<void> {
    while (this.resume && !signal.aborted) {
      await Promise.race([
        this.resume.promise,
        new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true })),
      ]);
    }
  }
}

/**
 * Sweeps one table. Returns when every segment reached its end (`finished`) or the signal stopped
 * it (`stopped`, checkpoints saved). Throws on anything that is not an item's problem (missing
 * table, access denied, lost endpoint, lost ownership of the run): the run is marked failed where
 * the ledger can still be reached, its checkpoints stay.
 */
export async function runSweep(options: SweepOptions): Promise<SweepReport> {
  const { clients, ledger, table, tableName, plan } = options;
  const { doc } = clients;
  const dryRun = plan.action === "dry-run";
  const concurrency = options.concurrency ?? SWEEP_DEFAULTS.concurrency;
  const sampleLimit = options.sampleLimit ?? SWEEP_DEFAULTS.sampleLimit;
  const started = performance.now();

  const description = await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
  const estimatedTotal = description.Table?.ItemCount ?? 0;
  const pause = new PauseGate();
  // The flag is read before any work starts, then every few seconds by the control loop.
  pause.set((await ledger.pauseFlag())?.paused === true);
  const credentialsMarginMs = options.credentialsMarginMs ?? SWEEP_DEFAULTS.credentialsMarginMs;
  const expiresAt = await credentialsExpiration(clients.dynamodb);
  if (expiresAt && expiresAt.getTime() - Date.now() < credentialsMarginMs) {
    throw new Error(
      `the AWS credentials expire at ${expiresAt.toISOString()}: get fresh ones before sweeping (docs/runbook.md: long sweeps)`,
    );
  }

  const owner: SweepOwner = { host: hostname(), pid: process.pid, heartbeatAt: new Date().toISOString() };
  let run: SweepRun | undefined;
  let checkpoints: SweepCheckpoint[] = [];
  if (plan.action === "start") {
    const startedAt = new Date().toISOString();
    run = {
      table,
      sweepId: `${startedAt}-${randomBytes(3).toString("hex")}`,
      startedAt,
      status: "running",
      totalSegments: options.segments ?? SWEEP_DEFAULTS.segments,
      counts: emptySweepCounts(),
      owner,
    };
    await ledger.createSweep(run);
  } else if (plan.action === "resume") {
    run = plan.run;
    const previous = run.owner;
    // A dead process on this host holds no lease; a live one, or one elsewhere, until its heartbeat is stale.
    const ownerIsDead = previous?.host === owner.host && previous.pid !== process.pid && !isProcessAlive(previous.pid);
    const staleBefore = ownerIsDead
      ? "9999"
      : new Date(Date.now() - (options.leaseMs ?? SWEEP_DEFAULTS.leaseMs)).toISOString();
    if (!(await ledger.claimSweep(table, run.sweepId, owner, staleBefore)))
      throw new SweepBusyError((await ledger.latestSweep(table)) ?? run);
    checkpoints = await ledger.checkpoints(table, run.sweepId);
  }
  const totalSegments = run?.totalSegments ?? options.segments ?? SWEEP_DEFAULTS.segments;
  const bySegment = new Map(checkpoints.map((c) => [c.segment, c]));
  /** Per segment: the counts up to its checkpoint (what the ledger knows). */
  const segmentCounts = Array.from({ length: totalSegments }, (_, s) => ({
    ...(bySegment.get(s)?.counts ?? emptySweepCounts()),
  }));
  const scannedBefore = segmentCounts.reduce((n, c) => n + c.scanned, 0);
  const ledgerTotals = () => segmentCounts.reduce((sum, c) => addSweepCounts(sum, c), emptySweepCounts());

  const counts = emptySweepCounts();
  const samples: SweepSamples = { rejected: [], violations: [], diffs: [] };
  const throttler = new Throttler(options.maxWcu !== undefined ? { maxWcu: options.maxWcu } : {});
  const onThrottle = () => throttler.onThrottle();
  const stopObserving = observeThrottling(clients.dynamodb, onThrottle);
  const limit = new ConcurrencyLimit(concurrency);

  // One signal for "stop issuing work": the caller's, or a fatal error in any worker.
  const stop = new AbortController();
  let fatal: unknown;
  /** Set when the sweep stops itself before its credentials stop working. */
  let stopReason: string | undefined;
  const fail = (err: unknown) => {
    fatal ??= err;
    stop.abort();
  };
  const onCallerStop = () => stop.abort();
  options.signal?.addEventListener("abort", onCallerStop, { once: true });
  if (options.signal?.aborted) stop.abort();

  const progress = (): SweepProgress => ({
    table,
    scanned: scannedBefore + counts.scanned,
    estimatedTotal,
    counts: { ...counts },
    elapsedMs: performance.now() - started,
    paused: pause.paused,
    wcuPerSecond: throttler.achievedRate(),
    wcuLimit: throttler.stats.limit,
    throttles: throttler.stats.throttles,
  });

  // Control loop: pause flag and heartbeat (with running totals, for `status` and the operator).
  const controlDone = (async () => {
    const interval = options.controlIntervalMs ?? SWEEP_DEFAULTS.controlIntervalMs;
    for (;;) {
      await sleep(interval, stop.signal);
      if (stop.signal.aborted) return;
      try {
        const expiration = await credentialsExpiration(clients.dynamodb);
        if (expiration && expiration.getTime() - Date.now() < credentialsMarginMs) {
          stopReason = `the AWS credentials expire at ${expiration.toISOString()} and were not renewed`;
          stop.abort();
          return;
        }
        pause.set((await ledger.pauseFlag())?.paused === true);
        if (run) {
          owner.heartbeatAt = new Date().toISOString();
          if (!(await ledger.updateSweep(run, owner, { owner, counts: ledgerTotals() }))) {
            throw new Error(`${table}: sweep ${run.sweepId} was taken over by another process; this one stops`);
          }
        }
      } catch (err) {
        fail(err);
      }
    }
  })();
  const progressTimer = options.onProgress
    ? setInterval(() => options.onProgress!(progress()), options.progressIntervalMs ?? 1000)
    : undefined;

  const record = (pageCounts: SweepCounts, item: Item, patch: Patch, result?: ApplyResult) => {
    const key = patch.key;
    for (const c of [pageCounts, counts]) {
      c.scanned++;
      if (patch.violations.length > 0) c.violations++;
      if (patch.set.length === 0) {
        if (inScope(table, item)) c.alreadyNormalized++;
        else c.outOfScope++;
        continue;
      }
      c.needsWork++;
      if (!result) continue;
      c.consumedWcu += result.consumedWcu;
      if (result.outcome === "applied") c.applied++;
      else if (result.outcome === "conflict") c.conflicts++;
      else if (result.outcome === "gone") c.gone++;
      else if (result.outcome === "rejected") c.rejected++;
    }
    if (patch.violations.length > 0 && samples.violations.length < sampleLimit)
      samples.violations.push({ key, violations: patch.violations });
    if (result?.outcome === "rejected" && samples.rejected.length < sampleLimit)
      samples.rejected.push({ key, reason: result.reason ?? "" });
    if (dryRun && patch.set.length > 0 && samples.diffs.length < sampleLimit)
      samples.diffs.push({ key, set: patch.set.map(describeAssignment) });
  };

  /** Derives and applies one item's patch; false when stopped before its write. */
  const processItem = async (item: Item, pageCounts: SweepCounts): Promise<boolean> => {
    const patch = await derivePatchFor(
      doc,
      table,
      tableName,
      item,
      { mode: "sweep" },
      { retryThrottling: true, onThrottle },
    );
    if (patch.set.length === 0 || dryRun) {
      record(pageCounts, item, patch);
      return true;
    }
    const estimate = throttler.estimate();
    await throttler.acquire(estimate, stop.signal);
    if (stop.signal.aborted) return false;
    const result = await retryThrottled(
      async () => {
        try {
          return await applyPatch(doc, tableName, patch, "sweep");
        } catch (err) {
          // The item is in a transaction of the application: its write wins, like any other conflict.
          if (isErrorNamed(err, "TransactionConflictException"))
            return { outcome: "conflict", key: patch.key, consumedWcu: 0 } satisfies ApplyResult;
          throw err;
        }
      },
      { onThrottle },
    );
    throttler.settle(estimate, result.consumedWcu);
    record(pageCounts, item, patch, result);
    return true;
  };

  /** Segments that reached their end (in this or an earlier attempt). */
  const ended = new Set<number>();
  const sweepSegment = async (segment: number) => {
    const checkpoint = bySegment.get(segment);
    if (checkpoint?.done) {
      ended.add(segment);
      return;
    }
    let pages = checkpoint?.pages ?? 0;
    const attributes = sweepAttributes(table);
    const scan = scanSegment({
      doc,
      tableName,
      segment,
      totalSegments,
      attributes,
      ...(checkpoint?.cursor ? { cursor: checkpoint.cursor } : {}),
      signal: stop.signal,
      onThrottle,
    });
    for await (const page of scan) {
      const pageCounts = emptySweepCounts();
      const tasks: Promise<boolean>[] = [];
      for (const item of page.items) {
        await pause.wait(stop.signal);
        if (stop.signal.aborted) break;
        await limit.acquire();
        if (stop.signal.aborted) {
          limit.release();
          break;
        }
        const task = processItem(item, pageCounts).finally(() => limit.release());
        task.catch(fail);
        tasks.push(task);
      }
      const done = await Promise.allSettled(tasks);
      const complete = tasks.length === page.items.length && done.every((d) => d.status === "fulfilled" && d.value);
      if (!complete) return;
      pages++;
      addSweepCounts(segmentCounts[segment]!, pageCounts);
      if (run) {
        await ledger.saveCheckpoint({
          table,
          sweepId: run.sweepId,
          segment,
          ...(page.cursor ? { cursor: page.cursor } : {}),
          done: page.cursor === undefined,
          pages,
          counts: segmentCounts[segment]!,
          updatedAt: new Date().toISOString(),
        });
      }
      if (page.cursor === undefined) ended.add(segment);
      await pause.wait(stop.signal);
      if (stop.signal.aborted) return;
    }
  };

  await Promise.all(
    Array.from({ length: totalSegments }, (_, s) =>
      sweepSegment(s).catch((err) => {
        // An abort of the scan request is how a stop interrupts a page: not an error.
        if (!(stop.signal.aborted && isErrorNamed(err, "AbortError"))) fail(err);
      }),
    ),
  );
  stop.abort();
  await controlDone;
  if (progressTimer) clearInterval(progressTimer);
  options.signal?.removeEventListener("abort", onCallerStop);
  stopObserving();

  // Credentials that stopped working are a stop, not a failure: nothing is wrong with the sweep, the
  // checkpoints hold, and --resume with fresh credentials continues it.
  const expired = expiredCredentials(fatal);
  if (expired) {
    stopReason = expired;
    fatal = undefined;
  }
  const finished = fatal === undefined && stopReason === undefined && ended.size === totalSegments;
  if (run) {
    const now = new Date().toISOString();
    const fields: Partial<SweepRun> =
      fatal !== undefined
        ? { status: "failed", stoppedAt: now, error: oneLine(fatal) }
        : finished
          ? { status: "finished", finishedAt: now }
          : { status: "stopped", stoppedAt: now, ...(stopReason ? { error: stopReason } : {}) };
    try {
      await ledger.updateSweep(run, owner, { ...fields, counts: ledgerTotals() });
    } catch (err) {
      // The ledger may be what failed; the run then stays "running" with a stale heartbeat, which
      // --resume takes over. Expired credentials cannot write it either: the stop stands.
      if (!expiredCredentials(err)) fatal ??= err;
      else if (stopReason) stopReason += " (the ledger could not record it with them; --resume takes the run over)";
    }
  }
  options.onProgress?.(progress());
  if (fatal !== undefined) throw fatal;
  return {
    table,
    tableName,
    ...(run ? { sweepId: run.sweepId } : {}),
    status: finished ? "finished" : "stopped",
    dryRun,
    ...(stopReason ? { stopReason } : {}),
    resumed: plan.action === "resume",
    totalSegments,
    counts,
    durationMs: Math.round(performance.now() - started),
    samples,
    throttles: throttler.stats.throttles,
  };
}

/** An error as one line without item data (SDK messages name attributes and keys, not values). */
function oneLine(err: unknown): string {
  const e = err as { name?: string; message?: string };
  return `${e?.name ?? "Error"}: ${(e?.message ?? String(err)).split("\n")[0]}`;
}
