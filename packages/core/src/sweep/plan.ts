// What a sweep does for a table, decided before anything runs (so a multi-table sweep fails up
// front), its defaults, and the client settings it needs.
import type { DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import type { Ledger, SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";

export const SWEEP_DEFAULTS = {
  segments: 8,
  concurrency: 32,
  /** How often a running sweep reads the pause flag and its budget and renews its leases. */
  controlIntervalMs: 2000,
  /** A run or segment whose heartbeat is older than this may be taken over by another worker. */
  leaseMs: 30_000,
  /** A segment worker returns after this long (well under Lambda's 15 minutes). */
  sliceMs: 10 * 60_000,
  /** At most this long between an item's write and the checkpoint that covers it (plus one write). */
  checkpointIntervalMs: 100,
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
      `${run.table}: an unfinished sweep exists (id ${run.sweepId}, started ${run.startedAt}, ${run.status}` +
        `${run.error ? `: ${run.error}` : ""}); continue it with --resume`,
    );
    this.name = "UnfinishedSweepError";
  }
}

/**
 * `--resume` without `--distributed` of a run the state machine is working on: local workers would
 * compete with its Lambdas for the segments.
 */
export class DistributedRunError extends UnfinishedSweepError {
  constructor(run: SweepRun) {
    super(run);
    this.message =
      `${run.table}: sweep ${run.sweepId} runs on the state machine (${run.executionArn}); follow it with ` +
      "sweep --distributed --resume, or stop it with sweep --stop before resuming it here";
    this.name = "DistributedRunError";
  }
}

/** Another live process runs the sweep. */
export class SweepBusyError extends Error {
  constructor(readonly run: SweepRun) {
    const owner = run.owner;
    super(
      `${run.table}: sweep ${run.sweepId} is running in process ${owner?.pid} on ${owner?.host} ` +
        `(heartbeat ${owner?.heartbeatAt}); wait for it or stop it (Ctrl-C there) before resuming`,
    );
    this.name = "SweepBusyError";
  }
}

export async function planSweep(
  ledger: Ledger,
  table: SiteLogixTable,
  options: { resume?: boolean; dryRun?: boolean; distributed?: boolean },
): Promise<SweepPlan> {
  if (options.dryRun) return { action: "dry-run" };
  const latest = await ledger.latestSweep(table);
  const unfinished = latest !== undefined && latest.status !== "finished";
  if (!options.resume) {
    if (unfinished) throw new UnfinishedSweepError(latest);
    return { action: "start" };
  }
  if (unfinished && latest.executionArn && latest.status === "running" && !options.distributed)
    throw new DistributedRunError(latest);
  if (unfinished) return { action: "resume", run: latest };
  return latest ? { action: "skip", run: latest } : { action: "start" };
}

/** Whether process `pid` on this host is alive (a dead one holds no lease). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}
