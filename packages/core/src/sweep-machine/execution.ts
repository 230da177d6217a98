// A distributed sweep's Step Functions execution: started for a sweep run the ledger holds (its
// name is the sweep id), stopped, redriven or restarted over the unfinished segments, and
// described for `sweep` and `status`. The run record remembers the latest execution's ARN.
import {
  DescribeExecutionCommand,
  RedriveExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { Resource } from "sst/resource";
import { type Ledger, ledgerKeys, type SweepRun } from "../ledger/index.js";
import type { SiteLogixTable } from "../schema.js";
import { sleep } from "../sleep.js";
import { type SweepRunView, sweepRunView } from "../sweep/progress.js";
import { SWEEP_MACHINE_DEFAULTS } from "./asl.js";

/** The state machine's ARN outside `sst shell` (under it, the `SweepMachine` link carries it). */
export const SWEEP_MACHINE_ARN_ENV = "SITELOGIX_SWEEP_STATE_MACHINE_ARN";

/** What the `SweepMachine` link carries (stacks/sweep.ts). */
export interface SweepMachineLink {
  arn: string;
  /** The stage's default segments for a distributed sweep (migration.config.ts). */
  segments: number;
  maxConcurrency: number;
}

/** The stage's state machine: the `SweepMachine` link, else SITELOGIX_SWEEP_STATE_MACHINE_ARN; undefined: none. */
export function sweepMachineLink(env: NodeJS.ProcessEnv = process.env): SweepMachineLink | undefined {
  // The links object throws on a name it does not hold: ask first.
  const linked =
    "SweepMachine" in Resource
      ? (Resource as unknown as Record<string, Partial<SweepMachineLink> | undefined>).SweepMachine
      : undefined;
  if (typeof linked?.arn === "string") {
    return {
      arn: linked.arn,
      segments: Number(linked.segments ?? SWEEP_MACHINE_DEFAULTS.segments),
      maxConcurrency: Number(linked.maxConcurrency ?? SWEEP_MACHINE_DEFAULTS.maxConcurrency),
    };
  }
  const arn = env[SWEEP_MACHINE_ARN_ENV];
  return arn
    ? { arn, segments: SWEEP_MACHINE_DEFAULTS.segments, maxConcurrency: SWEEP_MACHINE_DEFAULTS.maxConcurrency }
    : undefined;
}

/** A run's record with what the distributed sweep adds: its latest execution and how many it had. */
export type DistributedRun = SweepRun & { executions?: number };

/**
 * The execution's name: the sweep id, with the colons of its time as dashes (Step Functions refuses
 * `:` in a name); a restart over the unfinished segments adds `-<n>` (names are unique for 90 days).
 */
export function executionName(sweepId: string, attempt = 1): string {
  const base = sweepId.replace(/[^A-Za-z0-9._-]/g, "-");
  return (attempt > 1 ? `${base}-${attempt}` : base).slice(0, 80);
}

/** What each execution is given: the run, and the segments its map runs (every unfinished one). */
export interface SweepExecutionInput {
  sweepId: string;
  table: SiteLogixTable;
  totalSegments: number;
  segments: number[];
}

export interface SweepExecutionState {
  executionArn: string;
  status: "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE";
  startDate?: string;
  stopDate?: string;
  /** Whether a failed, timed-out or aborted execution can still be redriven (within 14 days). */
  redriveStatus?: string;
  redriveStatusReason?: string;
  redriveCount?: number;
  error?: string;
  cause?: string;
}

const ENDED = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);
/** Running, or about to run again (a redrive was accepted). */
const isRunning = (state: SweepExecutionState) => state.status === "RUNNING" || state.status === "PENDING_REDRIVE";

async function updateRun(ledger: Ledger, run: SweepRun, set: Record<string, unknown>, remove: string[] = []) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(set).map(([k, v], i) => {
    names[`#s${i}`] = k;
    values[`:s${i}`] = v;
    return `#s${i} = :s${i}`;
  });
  const removes = remove.map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  await ledger.doc.send(
    new UpdateCommand({
      TableName: ledger.tableName,
      Key: ledgerKeys.sweep(run.table, run.sweepId),
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }),
  );
}

/** Starts an execution over `segments` of the run and records it on the run; returns its ARN. */
export async function startSweepExecution(
  sfn: SFNClient,
  ledger: Ledger,
  machineArn: string,
  run: DistributedRun,
  segments: number[],
): Promise<string> {
  const attempt = (run.executions ?? 0) + 1;
  const input: SweepExecutionInput = {
    sweepId: run.sweepId,
    table: run.table as SiteLogixTable,
    totalSegments: run.totalSegments,
    segments,
  };
  const started = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: machineArn,
      name: executionName(run.sweepId, attempt),
      input: JSON.stringify(input),
    }),
  );
  const executionArn = started.executionArn!;
  await updateRun(ledger, run, { executionArn, executions: attempt, status: "running" }, ["stoppedAt", "error"]);
  return executionArn;
}

export async function describeSweepExecution(sfn: SFNClient, executionArn: string): Promise<SweepExecutionState> {
  const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  return {
    executionArn,
    status: d.status as SweepExecutionState["status"],
    ...(d.startDate ? { startDate: d.startDate.toISOString() } : {}),
    ...(d.stopDate ? { stopDate: d.stopDate.toISOString() } : {}),
    ...(d.redriveStatus ? { redriveStatus: d.redriveStatus } : {}),
    ...(d.redriveStatusReason ? { redriveStatusReason: d.redriveStatusReason } : {}),
    ...(d.redriveCount !== undefined ? { redriveCount: d.redriveCount } : {}),
    ...(d.error ? { error: d.error } : {}),
    ...(d.cause ? { cause: d.cause } : {}),
  };
}

/**
 * Stops the run's execution (no new slices start; slices in flight finish and checkpoint) and marks
 * the run stopped. Returns the execution's state before the stop; undefined when the run has none.
 */
export async function stopSweepExecution(
  sfn: SFNClient,
  ledger: Ledger,
  run: DistributedRun,
  by: string,
): Promise<SweepExecutionState | undefined> {
  if (!run.executionArn) return undefined;
  const state = await describeSweepExecution(sfn, run.executionArn);
  if (isRunning(state)) {
    await sfn.send(
      new StopExecutionCommand({
        executionArn: run.executionArn,
        error: "SweepStopped",
        cause: `stopped by ${by} (sitelogix-migrate sweep --stop)`,
      }),
    );
  }
  if (run.status === "running")
    await updateRun(ledger, run, { status: "stopped", stoppedAt: new Date().toISOString() });
  return state;
}

export type SweepResumeAction =
  /** Its execution still runs: follow it. */
  | { action: "running"; executionArn: string }
  /** The failed, timed-out or aborted execution was redriven: its unfinished children run again. */
  | { action: "redriven"; executionArn: string }
  /** A new execution over the unfinished segments only (no execution, or one past its redrive window). */
  | { action: "restarted"; executionArn: string; segments: number[]; why: string }
  /** Every segment is done: nothing to resume. */
  | { action: "finished" };

/** Segments of the run not done, in order; one without a record yet counts as not done. */
export async function unfinishedSegments(ledger: Ledger, run: SweepRun): Promise<number[]> {
  const done = new Set((await ledger.checkpoints(run.table, run.sweepId)).filter((s) => s.done).map((s) => s.segment));
  return Array.from({ length: run.totalSegments }, (_, s) => s).filter((s) => !done.has(s));
}

/** Continues an unfinished run in Step Functions: see SweepResumeAction. */
export async function resumeSweepExecution(
  sfn: SFNClient,
  ledger: Ledger,
  machineArn: string,
  run: DistributedRun,
): Promise<SweepResumeAction> {
  let why = "the run has no execution yet";
  if (run.executionArn) {
    const state = await describeSweepExecution(sfn, run.executionArn);
    if (isRunning(state)) return { action: "running", executionArn: run.executionArn };
    if (ENDED.has(state.status) && state.redriveStatus === "REDRIVABLE") {
      await sfn.send(new RedriveExecutionCommand({ executionArn: run.executionArn }));
      await updateRun(ledger, run, { status: "running" }, ["stoppedAt", "error"]);
      return { action: "redriven", executionArn: run.executionArn };
    }
    why = `its execution ${state.status}${state.redriveStatusReason ? `: ${state.redriveStatusReason}` : ""}`;
  }
  const segments = await unfinishedSegments(ledger, run);
  if (segments.length === 0) return { action: "finished" };
  const executionArn = await startSweepExecution(sfn, ledger, machineArn, run, segments);
  return { action: "restarted", executionArn, segments, why };
}

export interface FollowedExecution {
  state: SweepExecutionState;
  view: SweepRunView;
  /** The caller stopped following (Ctrl-C); the execution goes on. */
  detached: boolean;
}

/**
 * Follows an execution from the ledger (segments, workers, rates, failures) and Step Functions (its
 * status) until it ends or `signal` detaches; `onView` gets each observation.
 */
export async function followSweepExecution(options: {
  sfn: SFNClient;
  ledger: Ledger;
  run: SweepRun;
  executionArn: string;
  /** The table's approximate item count, for the ETA. */
  estimatedTotal?: number;
  signal?: AbortSignal;
  intervalMs?: number;
  onView?: (view: SweepRunView, state: SweepExecutionState) => void;
}): Promise<FollowedExecution> {
  const { sfn, ledger, executionArn, signal } = options;
  for (;;) {
    const state = await describeSweepExecution(sfn, executionArn);
    const run = (await ledger.get<SweepRun>(ledgerKeys.sweep(options.run.table, options.run.sweepId))) ?? options.run;
    const view = await sweepRunView(ledger, run, options.estimatedTotal);
    options.onView?.(view, state);
    if (!isRunning(state)) {
      // The run's record says what became of it (a stop marked it already, a success finished it).
      if (ENDED.has(state.status) && run.status === "running") {
        const error = `execution ${state.status}${state.error ? `: ${state.error}` : ""}`;
        await updateRun(ledger, run, {
          status: "failed",
          stoppedAt: state.stopDate ?? new Date().toISOString(),
          error,
        });
      }
      return { state, view, detached: false };
    }
    await sleep(options.intervalMs ?? 2_000, signal);
    if (signal?.aborted) return { state, view, detached: true };
  }
}
